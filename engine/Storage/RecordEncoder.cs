using System.Text;

namespace AssocDB.Engine.Storage;

/// <summary>
/// Encodes records into state-store values (<see cref="StateRecord"/>, checksummed) in one reused
/// buffer, so applying a batch of a million records does not allocate a stream per record. A
/// returned span is valid until the next call.
/// </summary>
internal sealed class RecordEncoder : IDisposable
{
    private readonly MemoryStream _buffer = new();
    private readonly BinaryWriter _writer;

    public RecordEncoder() => _writer = new BinaryWriter(_buffer, Encoding.UTF8, leaveOpen: true);

    /// <summary>Encodes one record of <paramref name="kind"/> with its <see cref="RecordCodec"/>
    /// writer, as the state store's value for it.</summary>
    public ReadOnlySpan<byte> Encode<T>(RecordKind kind, T record, Action<BinaryWriter, T> write)
    {
        _buffer.SetLength(StateRecord.AddedBytes);
        _buffer.Position = StateRecord.AddedBytes;
        write(_writer, record);
        _writer.Flush();
        Span<byte> value = _buffer.GetBuffer().AsSpan(0, (int)_buffer.Length);
        StateRecord.Seal(kind, value);
        return value;
    }

    public void Dispose()
    {
        _writer.Dispose();
        _buffer.Dispose();
    }
}
