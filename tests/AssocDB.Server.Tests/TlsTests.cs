using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using AssocDB.Protocol.V1;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace AssocDB.Server.Tests;

/// <summary>TLS comes from standard Kestrel endpoint configuration: with a certificate configured,
/// the server speaks gRPC over TLS (HTTP/2) and a client that trusts the certificate is served,
/// with the API key still required.</summary>
public sealed class TlsTests
{
    [Fact]
    public async Task A_kestrel_endpoint_with_a_certificate_serves_grpc_over_tls()
    {
        string folder = Path.Combine(Path.GetTempPath(), "assocdb-server-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            using X509Certificate2 certificate = SelfSigned();
            string pfx = Path.Combine(folder, "server.pfx");
            await File.WriteAllBytesAsync(pfx, certificate.Export(X509ContentType.Pfx, "test-password"));

            await using var app = AssocServer.Build([
                "--Kestrel:Endpoints:Grpc:Url=https://127.0.0.1:0",
                $"--Kestrel:Endpoints:Grpc:Certificate:Path={pfx}",
                "--Kestrel:Endpoints:Grpc:Certificate:Password=test-password",
                "--metrics-port", "-1", "--data", Path.Combine(folder, "data"), "--device", "cpu", "--api-key", "secret",
            ]);
            await app.StartAsync();
            string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            Assert.StartsWith("https://", address, StringComparison.Ordinal);

            var handler = new SocketsHttpHandler();
            handler.SslOptions.RemoteCertificateValidationCallback = (_, presented, _, _) =>
                presented is not null && presented.GetCertHashString() == certificate.GetCertHashString();
            using var channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = handler });

            await RunningServer.WaitServingAsync(channel);
            var collections = new CollectionService.CollectionServiceClient(channel);
            var refused = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () => await collections.ListCollectionsAsync(new ListCollectionsRequest()));
            Assert.Equal(Grpc.Core.StatusCode.Unauthenticated, refused.StatusCode);
            var authorized = new Grpc.Core.Metadata { { "authorization", "Bearer secret" } };
            Assert.Empty((await collections.ListCollectionsAsync(new ListCollectionsRequest(), authorized)).Collections);
            await app.StopAsync();
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static X509Certificate2 SelfSigned()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
    }
}
