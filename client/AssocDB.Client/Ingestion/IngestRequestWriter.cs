using System.Buffers.Binary;
using AssocDB.Protocol.V1;
using Google.Protobuf;
using Grpc.Core;

namespace AssocDB.Client.Ingestion;

/// <summary>
/// Builds an <see cref="IngestRequest"/>'s wire bytes item by item, as the generated code would
/// encode the message (the server reads them as one): a fact read as UTF-8 goes onto the wire as
/// its bytes, with no strings or message objects in between, and each item's size is known as it
/// is added rather than computed again for every limit and once more to serialize.
/// </summary>
internal sealed class IngestRequestWriter
{
    private const byte ConceptsTag = (4 << 3) | 2, FactsTag = (5 << 3) | 2;
    private const byte HeadTag = (1 << 3) | 2, RelationTag = (2 << 3) | 2, TailTag = (3 << 3) | 2, WeightTag = (4 << 3) | 5;

    /// <summary>The ingest call with its requests already encoded; the server sees an ordinary IngestRequest stream.</summary>
    public static readonly Method<byte[], IngestAck> IngestMethod = new(
        MethodType.DuplexStreaming,
        IngestService.Descriptor.FullName,
        nameof(IngestService.IngestServiceClient.Ingest),
        Marshallers.Create(static (byte[] request) => request, static request => request),
        Marshallers.Create(static (IngestAck ack) => ack.ToByteArray(), IngestAck.Parser.ParseFrom));

    private readonly Buffer _concepts = new();
    private readonly Buffer _facts = new();

    /// <summary>Appends a fact; returns its encoded size without the field's tag and length.</summary>
    public int Add(FactItem item)
    {
        if (!item.IsUtf8)
        {
            return _facts.AddMessage(FactsTag, item.Fact);
        }

        ReadOnlySpan<byte> head = item.HeadUtf8, relation = item.RelationUtf8, tail = item.TailUtf8;
        int size = StringSize(head) + StringSize(relation) + StringSize(tail) + (item.Weight.HasValue ? 5 : 0);
        Span<byte> output = _facts.Reserve(1 + CodedOutputStream.ComputeLengthSize(size) + size);
        output[0] = FactsTag;
        int at = 1 + WriteVarint(output[1..], (uint)size);
        at += WriteString(output[at..], HeadTag, head);
        at += WriteString(output[at..], RelationTag, relation);
        at += WriteString(output[at..], TailTag, tail);
        if (item.Weight is float weight)
        {
            output[at] = WeightTag;
            BinaryPrimitives.WriteSingleLittleEndian(output[(at + 1)..], weight);
        }

        return size;
    }

    /// <summary>Appends a concept; returns its encoded size without the field's tag and length.</summary>
    public int Add(ConceptInput concept)
    {
        return _concepts.AddMessage(ConceptsTag, concept);
    }

    /// <summary>The request holding every item added since the last call, which starts the next one.</summary>
    public byte[] Finish(string collection, string session, long sequence)
    {
        var header = new IngestRequest { Collection = collection, Session = session, Sequence = sequence };
        int headerSize = header.CalculateSize();
        byte[] request = new byte[headerSize + _concepts.Length + _facts.Length];
        header.WriteTo(request.AsSpan(0, headerSize));
        _concepts.Written.CopyTo(request.AsSpan(headerSize));
        _facts.Written.CopyTo(request.AsSpan(headerSize + _concepts.Length));
        _concepts.Clear();
        _facts.Clear();
        return request;
    }

    /// <summary>A string field as the generated code writes it: left out when empty.</summary>
    private static int StringSize(ReadOnlySpan<byte> utf8) =>
        utf8.IsEmpty ? 0 : 1 + CodedOutputStream.ComputeLengthSize(utf8.Length) + utf8.Length;

    private static int WriteString(Span<byte> output, byte tag, ReadOnlySpan<byte> utf8)
    {
        if (utf8.IsEmpty)
        {
            return 0;
        }

        output[0] = tag;
        int at = 1 + WriteVarint(output[1..], (uint)utf8.Length);
        utf8.CopyTo(output[at..]);
        return at + utf8.Length;
    }

    private static int WriteVarint(Span<byte> output, uint value)
    {
        int at = 0;
        while (value >= 0x80)
        {
            output[at++] = (byte)(value | 0x80);
            value >>= 7;
        }

        output[at++] = (byte)value;
        return at;
    }

    /// <summary>A growing byte buffer, kept between requests.</summary>
    private sealed class Buffer
    {
        private byte[] _bytes = new byte[64 * 1024];

        public int Length { get; private set; }

        public ReadOnlySpan<byte> Written => _bytes.AsSpan(0, Length);

        public Span<byte> Reserve(int count)
        {
            if (Length + count > _bytes.Length)
            {
                Array.Resize(ref _bytes, Math.Max(_bytes.Length * 2, Length + count));
            }

            Span<byte> reserved = _bytes.AsSpan(Length, count);
            Length += count;
            return reserved;
        }

        public int AddMessage(byte tag, IMessage message)
        {
            int size = message.CalculateSize();
            Span<byte> output = Reserve(1 + CodedOutputStream.ComputeLengthSize(size) + size);
            output[0] = tag;
            message.WriteTo(output[(1 + WriteVarint(output[1..], (uint)size))..]);
            return size;
        }

        public void Clear() => Length = 0;
    }
}
