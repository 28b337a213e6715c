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

    public ReadOnlySpan<byte> Encode(ConceptRecord concept)
    {
        Reset();
        RecordCodec.Write(_writer, concept);
        return Written;
    }

    public ReadOnlySpan<byte> Encode(RelationRecord relation)
    {
        Reset();
        RecordCodec.Write(_writer, relation);
        return Written;
    }

    public ReadOnlySpan<byte> Encode(EdgeRecord edge)
    {
        Reset();
        RecordCodec.Write(_writer, edge);
        return Written;
    }

    public ReadOnlySpan<byte> Encode(IngestMark mark)
    {
        Reset();
        RecordCodec.Write(_writer, mark);
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

    private void Reset() => _buffer.SetLength(0);

    public void Dispose()
    {
        _writer.Dispose();
        _buffer.Dispose();
    }
}
