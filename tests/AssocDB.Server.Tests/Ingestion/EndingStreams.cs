using Grpc.Core;

namespace AssocDB.Server.Tests.Ingestion;

/// <summary>Writes to a stream the server may already have ended.</summary>
internal static class EndingStreams
{
    /// <summary>Writes <paramref name="message"/> unless the call has ended. A server that refuses a
    /// call, or fails on an earlier message, answers without reading the rest; a write racing that
    /// answer fails with the call's status, as already completed, or cancelled by the stream's
    /// reset, depending on when it lands. The caller reads the call's status from the response
    /// stream either way.</summary>
    public static async Task WriteUnlessEndedAsync<T>(this IClientStreamWriter<T> writer, T message)
    {
        try
        {
            await writer.WriteAsync(message);
        }
        catch (Exception ended) when (ended is RpcException or InvalidOperationException or OperationCanceledException)
        {
        }
    }
}
