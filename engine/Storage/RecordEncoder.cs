using System.Text;

namespace AssocDB.Engine.Storage;

/// <summary>
/// Encodes records for the state store into one reused buffer, so applying a batch of a million
/// records does not allocate a stream per record. A returned span is valid until the next call.
/// </summary>
internal sealed class RecordEncoder : IDisposable
{
    private readonly MemoryStream _buffer = new();
    private readonly BinaryWriter _writer;

    public RecordEncoder() => _writer = new BinaryWriter(_buffer, Encoding.UTF8, leaveOpen: true);

    /// <summary>Encodes one record with its <see cref="RecordCodec"/> writer.</summary>
    public ReadOnlySpan<byte> Encode<T>(T record, Action<BinaryWriter, T> write)
    {
        _buffer.SetLength(0);
        write(_writer, record);
        return Written;
    }

    private ReadOnlySpan<byte> Written
    {
        get
        {
            _writer.Flush();
            return _buffer.GetBuffer().AsSpan(0, (int)_buffer.Length);
        }
    }

    public void Dispose()
    {
        _writer.Dispose();
        _buffer.Dispose();
    }
}
