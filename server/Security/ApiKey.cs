using System.Security.Cryptography;
using System.Text;
using AssocDB.Server.Configuration;

namespace AssocDB.Server.Security;

/// <summary>
/// The configured API key, checked against an <c>authorization: Bearer &lt;key&gt;</c> header. Keys
/// are compared as SHA-256 digests with <see cref="CryptographicOperations.FixedTimeEquals"/>, so
/// neither the content nor the length of the configured key leaks through timing.
/// </summary>
internal sealed class ApiKey(AssocServerOptions options)
{
    private const string Scheme = "Bearer ";

    private readonly byte[]? _expectedDigest =
        string.IsNullOrEmpty(options.ApiKey) ? null : SHA256.HashData(Encoding.UTF8.GetBytes(options.ApiKey));

    /// <summary>Whether a key is configured (without one, every caller is let in).</summary>
    public bool Required => _expectedDigest is not null;

    /// <summary>Why <paramref name="authorization"/> does not carry the key, or null when it does
    /// (or when no key is configured).</summary>
    public string? Refusal(string? authorization)
    {
        if (_expectedDigest is null)
        {
            return null;
        }

        if (authorization is null)
        {
            return "missing 'authorization: Bearer <api key>' header";
        }

        if (!authorization.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            return "the authorization header must use the Bearer scheme";
        }

        byte[] presented = SHA256.HashData(Encoding.UTF8.GetBytes(authorization[Scheme.Length..].Trim()));
        return CryptographicOperations.FixedTimeEquals(presented, _expectedDigest) ? null : "invalid API key";
    }
}
