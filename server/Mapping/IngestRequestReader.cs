using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using System.Text.Unicode;
using AssocDB.Protocol.V1;
using E = AssocDB.Engine.Model;

namespace AssocDB.Server.Mapping;

/// <summary>An ingest batch as the server reads it off the wire: the collection it is for, and the
/// batch for the engine. Disposed once the engine is done with it: its facts may be
/// <see cref="E.PackedFacts"/>, whose buffers then go back to their pool.</summary>
internal sealed record IngestBatchRequest(string Collection, E.IngestBatch Batch) : IDisposable
{
    public void Dispose() => (Batch.Facts as E.PackedFacts)?.Dispose();
}

/// <summary>
/// Reads an <see cref="IngestRequest"/> from its wire bytes straight into the engine's batch. The
/// generated parser builds a message per fact, each with an empty payload map of three objects
/// (Google.Protobuf creates every map field eagerly), which the server then copied into the engine's
/// <see cref="E.FactInput"/>: about 230 bytes of garbage per fact, the largest share of the server's
/// allocations in a bulk load. Requests of the shape clients send (names, sequence, facts with
/// weights and payloads) are read here, their facts into <see cref="E.PackedFacts"/>, whose names
/// the engine resolves without making a string of each (only payloads still take objects); any other (concepts, fields this version does not know,
/// unexpected wire types, malformed bytes, invalid UTF-8) goes to the generated parser and is mapped
/// as before, so what the server accepts, and how it reads it, do not change.
/// </summary>
internal static class IngestRequestReader
{
    private const int LengthDelimited = 2;
    private const int CollectionTag = (1 << 3) | LengthDelimited;
    private const int SessionTag = (2 << 3) | LengthDelimited;
    private const int SequenceTag = 3 << 3; // varint
    private const int FactTag = (5 << 3) | LengthDelimited;
    private const int HeadTag = (1 << 3) | LengthDelimited;
    private const int RelationTag = (2 << 3) | LengthDelimited;
    private const int TailTag = (3 << 3) | LengthDelimited;
    private const int WeightTag = (4 << 3) | 5; // fixed32
    private const int PayloadTag = (5 << 3) | LengthDelimited;
    private const int MapKeyTag = (1 << 3) | LengthDelimited;
    private const int MapValueTag = (2 << 3) | LengthDelimited;

    /// <summary>The request <paramref name="payload"/> encodes; throws as the generated parser does
    /// for bytes that are not one, and RESOURCE_EXHAUSTED naming <c>batch</c> for one of more items
    /// than <paramref name="limits"/> allow (when given).</summary>
    public static IngestBatchRequest Read(ReadOnlySequence<byte> payload, RequestLimits? limits)
    {
        if (payload.IsSingleSegment)
        {
            return Read(payload.FirstSpan, payload, limits);
        }

        // A large message arrives in several buffers; one contiguous copy keeps the reader simple.
        byte[] copy = ArrayPool<byte>.Shared.Rent((int)payload.Length);
        try
        {
            payload.CopyTo(copy);
            return Read(copy.AsSpan(0, (int)payload.Length), payload, limits);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(copy);
        }
    }

    private static IngestBatchRequest Read(ReadOnlySpan<byte> bytes, ReadOnlySequence<byte> payload, RequestLimits? limits)
    {
        // Counted before anything is built for them: the limit was checked once the request was
        // read, and a 16 MiB message of empty facts holds 8 M of them, 370 MB read here or 2 GB
        // through the generated parser, per stream.
        int facts = WireScan.Occurrences(payload, IngestRequest.FactsFieldNumber);
        limits?.BatchAtMost(facts + WireScan.Occurrences(payload, IngestRequest.ConceptsFieldNumber), "batch");
        if (TryRead(bytes, facts, out IngestBatchRequest? read))
        {
            return read;
        }

        IngestRequest request = IngestRequest.Parser.ParseFrom(payload);
        return new IngestBatchRequest(request.Collection, request.ToEngine());
    }

    /// <summary>Reads a request of the common shape, or says false for any other. It holds
    /// <paramref name="factCount"/> facts, counted first so that their buffer is taken once at its
    /// size: grown by doubling, a batch of 10,000 facts allocated about 260 KB of arrays, the last on
    /// the large-object heap, whose churn sets off full collections.</summary>
    private static bool TryRead(ReadOnlySpan<byte> bytes, int factCount, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IngestBatchRequest? request)
    {
        request = null;
        string collection = "", session = "";
        long sequence = 0;
        // The names take at most the request's bytes, so the buffers are sized once.
        var facts = new E.PackedFacts(factCount, bytes.Length);
        int at = 0;
        while (at < bytes.Length)
        {
            if (!TryReadVarint(bytes, ref at, out ulong tag))
            {
                facts.Dispose();
                return false;
            }

            switch (tag)
            {
                case CollectionTag when TryReadString(bytes, ref at, out string? value):
                    collection = value;
                    break;
                case SessionTag when TryReadString(bytes, ref at, out string? value):
                    session = value;
                    break;
                case SequenceTag when TryReadVarint(bytes, ref at, out ulong value):
                    // int64 is sent as its two's complement, ten bytes when negative.
                    sequence = (long)value;
                    break;
                case FactTag when TryReadDelimited(bytes, ref at, out ReadOnlySpan<byte> message) && TryReadFact(message, facts):
                    break;
                default:
                    facts.Dispose();
                    return false;
            }
        }

        request = new IngestBatchRequest(collection, new E.IngestBatch(session, sequence, [], facts));
        return true;
    }

    /// <summary>A FactInput message, added to <paramref name="facts"/> as
    /// <see cref="ProtoMapping.ToEngine(FactInput)"/> maps it: an unset weight is 1, an empty payload
    /// none; a repeated field's last value wins, and so does a payload key's.</summary>
    private static bool TryReadFact(ReadOnlySpan<byte> bytes, E.PackedFacts facts)
    {
        scoped ReadOnlySpan<byte> head = default, relation = default, tail = default;
        float weight = 1f;
        Dictionary<string, string>? payload = null;
        int at = 0;
        while (at < bytes.Length)
        {
            if (!TryReadVarint(bytes, ref at, out ulong tag))
            {
                return false;
            }

            switch (tag)
            {
                case HeadTag when TryReadUtf8(bytes, ref at, out ReadOnlySpan<byte> value):
                    head = value;
                    break;
                case RelationTag when TryReadUtf8(bytes, ref at, out ReadOnlySpan<byte> value):
                    relation = value;
                    break;
                case TailTag when TryReadUtf8(bytes, ref at, out ReadOnlySpan<byte> value):
                    tail = value;
                    break;
                case WeightTag when at + sizeof(float) <= bytes.Length:
                    weight = BinaryPrimitives.ReadSingleLittleEndian(bytes[at..]);
                    at += sizeof(float);
                    break;
                case PayloadTag when TryReadDelimited(bytes, ref at, out ReadOnlySpan<byte> entry) && TryReadMapEntry(entry, out string? key, out string? value):
                    payload ??= new Dictionary<string, string>(StringComparer.Ordinal);
                    payload[key] = value;
                    break;
                default:
                    return false;
            }
        }

        facts.Add(head, relation, tail, weight, payload);
        return true;
    }

    /// <summary>A map entry: its key and value, each "" when absent.</summary>
    private static bool TryReadMapEntry(
        ReadOnlySpan<byte> bytes, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? value)
    {
        (key, value) = ("", "");
        int at = 0;
        while (at < bytes.Length)
        {
            if (!TryReadVarint(bytes, ref at, out ulong tag))
            {
                return false;
            }

            switch (tag)
            {
                case MapKeyTag when TryReadString(bytes, ref at, out string? read):
                    key = read;
                    break;
                case MapValueTag when TryReadString(bytes, ref at, out string? read):
                    value = read;
                    break;
                default:
                    return false;
            }
        }

        return true;
    }

    /// <summary>A length-delimited string of valid UTF-8 (Google.Protobuf refuses any other, and
    /// the request goes to it for its error).</summary>
    private static bool TryReadString(ReadOnlySpan<byte> bytes, ref int at, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? value)
    {
        value = TryReadUtf8(bytes, ref at, out ReadOnlySpan<byte> utf8) ? Encoding.UTF8.GetString(utf8) : null;
        return value is not null;
    }

    /// <summary>A length-delimited string's bytes, when they are valid UTF-8.</summary>
    private static bool TryReadUtf8(ReadOnlySpan<byte> bytes, ref int at, out ReadOnlySpan<byte> utf8) =>
        TryReadDelimited(bytes, ref at, out utf8) && Utf8.IsValid(utf8);

    private static bool TryReadDelimited(ReadOnlySpan<byte> bytes, ref int at, out ReadOnlySpan<byte> content)
    {
        content = default;
        if (!TryReadVarint(bytes, ref at, out ulong length) || length > (ulong)(bytes.Length - at))
        {
            return false;
        }

        content = bytes.Slice(at, (int)length);
        at += (int)length;
        return true;
    }

    /// <summary>A base-128 varint of at most ten bytes.</summary>
    private static bool TryReadVarint(ReadOnlySpan<byte> bytes, ref int at, out ulong value)
    {
        value = 0;
        for (int shift = 0; shift < 70 && at < bytes.Length; shift += 7)
        {
            byte next = bytes[at++];
            value |= (ulong)(next & 0x7F) << shift;
            if (next < 0x80)
            {
                return true;
            }
        }

        return false;
    }
}
