using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using AssocDB.Engine.Learning;
using AssocDB.Engine.Model;

namespace AssocDB.Engine.Storage;

/// <summary>
/// Binary encoding of records and mutation batches, shared by the write-ahead log and the state
/// store so that both hold the same bytes for the same record (the store with a checksum in place of
/// the record's leading id: <see cref="StateRecord"/>). Little-endian, length-prefixed UTF-8
/// strings; a version byte heads every log entry so the format can evolve.
/// </summary>
/// <remarks>
/// A log entry is the version (2), a CRC-32C of everything after it, the batch's sequence number,
/// the mutation count and the mutations. The checksum turns a damaged entry into an error instead
/// of wrong data (an all-zero record decodes as a valid edge), and the sequence numbers, one more
/// per entry, show where entries went missing (the log's reader skips a zeroed stretch as if it
/// were page padding). Version 1 entries (no checksum, no sequence) are still read.
/// </remarks>
internal static class RecordCodec
{
    private const byte UncheckedBatchFormat = 1;
    private const byte BatchFormat = 2;

    /// <summary>Where the checksum sits in an entry, and where the bytes it covers start.</summary>
    private const int ChecksumOffset = 1;
    private const int ChecksummedFrom = ChecksumOffset + sizeof(uint);

    private enum MutationTag : byte
    {
        PutConcept = 1,
        DeleteConcept = 2,
        PutRelation = 3,
        PutEdge = 4,
        DeleteEdge = 5,
        PutIngestMark = 6,

        /// <summary>Written only to drop marks beyond a lowered <see cref="DatabaseOptions.IngestSessionsKept"/>;
        /// versions before it cannot read a log holding one (a checkpoint empties the log).</summary>
        DeleteIngestMark = 7,

        /// <summary>A kept mark moved to a lower id, with its write order (the store's form of the
        /// mark); written only beside <see cref="DeleteIngestMark"/>, in the same entries. Versions
        /// that read tag 7 but predate this one refuse such an entry as unknown, as those before
        /// tag 7 refuse it (a checkpoint empties the log).</summary>
        MovedIngestMark = 8,
    }

    /// <summary>Encodes a batch, the log's <paramref name="sequence"/>-th, into
    /// <paramref name="stream"/>, replacing what it held, and returns the encoded bytes (valid until
    /// the stream is written again), with the index and size of its largest record: a record is
    /// encoded here as the state store stores it, less the checksum <see cref="StateRecord"/> adds
    /// (which the size includes), so the store takes it from the entry (<see cref="StoredMutation"/>)
    /// instead of encoding it again; <paramref name="mutationBounds"/>, when given, is filled with
    /// where each mutation starts in the entry and, last, where the final one ends. Reusing one
    /// stream keeps a megabyte-sized entry per batch from churning the large-object heap.</summary>
    public static ReadOnlyMemory<byte> EncodeBatch(
        long sequence, IReadOnlyList<Mutation> batch, MemoryStream stream, List<int>? mutationBounds, out int largestRecord, out long largestRecordBytes)
    {
        stream.SetLength(0);
        mutationBounds?.Clear();
        largestRecord = -1;
        largestRecordBytes = 0;
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(BatchFormat);
            writer.Write(0u); // the checksum, once the rest is written
            writer.Write(sequence);
            writer.Write(batch.Count);
            for (int i = 0; i < batch.Count; i++)
            {
                Mutation mutation = batch[i];
                // The tag is written first, so the record starts one byte on.
                mutationBounds?.Add((int)stream.Position);
                long recordStart = stream.Position + 1;
                switch (mutation)
                {
                    case Mutation.PutConcept put:
                        writer.Write((byte)MutationTag.PutConcept);
                        Write(writer, put.Concept);
                        break;
                    case Mutation.DeleteConcept delete:
                        writer.Write((byte)MutationTag.DeleteConcept);
                        writer.Write(delete.Id);
                        break;
                    case Mutation.PutRelation put:
                        writer.Write((byte)MutationTag.PutRelation);
                        Write(writer, put.Relation);
                        break;
                    case Mutation.PutEdge put:
                        writer.Write((byte)MutationTag.PutEdge);
                        Write(writer, put.Edge);
                        break;
                    case Mutation.DeleteEdge delete:
                        writer.Write((byte)MutationTag.DeleteEdge);
                        writer.Write(delete.Id);
                        break;
                    case Mutation.PutIngestMark { Moved: true } moved:
                        writer.Write((byte)MutationTag.MovedIngestMark);
                        WriteStored(writer, moved.Mark);
                        break;
                    case Mutation.PutIngestMark put:
                        writer.Write((byte)MutationTag.PutIngestMark);
                        Write(writer, put.Mark);
                        break;
                    case Mutation.DeleteIngestMark delete:
                        writer.Write((byte)MutationTag.DeleteIngestMark);
                        writer.Write(delete.Id);
                        break;
                    default:
                        throw new InvalidOperationException($"unknown mutation {mutation.GetType().Name}");
                }

                // Deletes write an id, not a record, and are far below any page.
                long storedBytes = stream.Position - recordStart + StateRecord.AddedBytes;
                if (storedBytes > largestRecordBytes)
                {
                    (largestRecord, largestRecordBytes) = (i, storedBytes);
                }
            }
        }

        mutationBounds?.Add((int)stream.Length);

        Memory<byte> entry = stream.GetBuffer().AsMemory(0, (int)stream.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(entry.Span[ChecksumOffset..], Crc32C.Of(entry.Span[ChecksummedFrom..]));
        return entry;
    }

    /// <summary>The sequence number of a whole checksummed batch, or null for anything else (an
    /// entry of the first format, bytes that are no entry), without decoding its mutations.</summary>
    public static long? ChecksummedSequence(ReadOnlySpan<byte> entry) =>
        entry.Length >= ChecksummedFrom + sizeof(long) + sizeof(int) && entry[0] == BatchFormat
            && BinaryPrimitives.ReadUInt32LittleEndian(entry[ChecksumOffset..]) == Crc32C.Of(entry[ChecksummedFrom..])
            ? BinaryPrimitives.ReadInt64LittleEndian(entry[ChecksummedFrom..])
            : null;

    /// <summary>Decodes a log entry; throws <see cref="InvalidDataException"/> for a damaged one
    /// (of the checksummed format: one of format 1 is taken as it reads).</summary>
    public static LoggedBatch DecodeBatch(ReadOnlySpan<byte> entry)
    {
        switch (entry.IsEmpty ? (byte)0 : entry[0])
        {
            case UncheckedBatchFormat:
                return DecodeMutations(null, entry, 1, wholly: false);
            case BatchFormat when entry.Length >= ChecksummedFrom + sizeof(long) + sizeof(int):
                uint stored = BinaryPrimitives.ReadUInt32LittleEndian(entry[ChecksumOffset..]);
                uint computed = Crc32C.Of(entry[ChecksummedFrom..]);
                if (stored != computed)
                {
                    throw new InvalidDataException($"log entry is damaged: its checksum is {computed:x8}, it was written as {stored:x8}");
                }

                long sequence = BinaryPrimitives.ReadInt64LittleEndian(entry[ChecksummedFrom..]);
                return DecodeMutations(sequence, entry, ChecksummedFrom + sizeof(long), wholly: true);
            case BatchFormat:
                throw new InvalidDataException($"log entry is cut short: {entry.Length} bytes, less than its header");
            default:
                throw new InvalidDataException(
                    $"log entry of {entry.Length} bytes starting with {(entry.IsEmpty ? "nothing" : entry[0].ToString(CultureInfo.InvariantCulture))} is not a batch of a known format ({UncheckedBatchFormat} or {BatchFormat})");
        }
    }

    /// <summary>The batch whose mutation count and mutations start at <paramref name="from"/> in
    /// <paramref name="entry"/>; <paramref name="wholly"/>: nothing may follow them.
    /// <paramref name="sequence"/> is the entry's, which its ingest marks were written at.</summary>
    private static LoggedBatch DecodeMutations(long? sequence, ReadOnlySpan<byte> entry, int from, bool wholly)
    {
        ReadOnlySpan<byte> bytes = entry[from..];
        using var reader = new BinaryReader(new MemoryStream(bytes.ToArray()), Encoding.UTF8);
        int count = reader.ReadInt32();
        if (count < 0 || count > bytes.Length)
        {
            // Every mutation takes at least its tag's byte.
            throw new InvalidDataException($"log entry of {bytes.Length} bytes claims {count} mutations");
        }

        var batch = new List<Mutation>(count);
        var bounds = new List<int>(count + 1);
        for (int i = 0; i < count; i++)
        {
            bounds.Add(from + (int)reader.BaseStream.Position);
            var tag = (MutationTag)reader.ReadByte();
            batch.Add(tag switch
            {
                MutationTag.PutConcept => new Mutation.PutConcept(ReadConcept(reader)),
                MutationTag.DeleteConcept => new Mutation.DeleteConcept(reader.ReadInt32()),
                MutationTag.PutRelation => new Mutation.PutRelation(ReadRelation(reader)),
                MutationTag.PutEdge => new Mutation.PutEdge(ReadEdge(reader)),
                MutationTag.DeleteEdge => new Mutation.DeleteEdge(reader.ReadInt32()),
                MutationTag.PutIngestMark => new Mutation.PutIngestMark(ReadIngestMark(reader, sequence ?? 0)),
                MutationTag.DeleteIngestMark => new Mutation.DeleteIngestMark(reader.ReadInt32()),
                MutationTag.MovedIngestMark => new Mutation.PutIngestMark(ReadStoredIngestMark(reader), Moved: true),
                _ => throw new InvalidDataException($"unknown mutation tag {(byte)tag}"),
            });
        }

        if (wholly && reader.BaseStream.Position != bytes.Length)
        {
            throw new InvalidDataException($"log entry holds {bytes.Length - reader.BaseStream.Position} bytes after its {count} mutations");
        }

        // Entries of the first format may hold bytes after their mutations, which are no record's.
        bounds.Add(from + (int)reader.BaseStream.Position);
        return new LoggedBatch(sequence, batch, bounds);
    }

    /// <summary>
    /// What the state store does for one mutation of a log entry (<paramref name="mutation"/>: its
    /// bytes there, from its tag to its end): the kind and id of the record it puts or
    /// deletes, and a put's record as the store stores it (<see cref="StateRecord"/>), taken from
    /// the entry, which holds the same bytes.
    /// </summary>
    public static StoredMutation StoredMutation(ReadOnlySpan<byte> mutation)
    {
        ReadOnlySpan<byte> record = mutation[1..];
        int id = BinaryPrimitives.ReadInt32LittleEndian(record);
        return (MutationTag)mutation[0] switch
        {
            MutationTag.PutConcept => new StoredMutation(RecordKind.Concept, id, record),
            MutationTag.DeleteConcept => new StoredMutation(RecordKind.Concept, id, default),
            MutationTag.PutRelation => new StoredMutation(RecordKind.Relation, id, record),
            MutationTag.PutEdge => new StoredMutation(RecordKind.Edge, id, record),
            MutationTag.DeleteEdge => new StoredMutation(RecordKind.Edge, id, default),
            MutationTag.PutIngestMark => new StoredMutation(RecordKind.IngestMark, id, record, recordAsStored: false),
            MutationTag.MovedIngestMark => new StoredMutation(RecordKind.IngestMark, id, record),
            MutationTag.DeleteIngestMark => new StoredMutation(RecordKind.IngestMark, id, default),
            var tag => throw new InvalidDataException($"unknown mutation tag {(byte)tag}"),
        };
    }

    public static ConceptRecord DecodeConcept(ReadOnlySpan<byte> bytes) => DecodeWith(bytes, ReadConcept);

    public static RelationRecord DecodeRelation(ReadOnlySpan<byte> bytes) => DecodeWith(bytes, ReadRelation);

    public static EdgeRecord DecodeEdge(ReadOnlySpan<byte> bytes) => DecodeWith(bytes, ReadEdge);

    /// <summary>A mark as the state store holds it (see <see cref="WriteStored"/>).</summary>
    public static IngestMark DecodeIngestMark(ReadOnlySpan<byte> bytes) => DecodeWith(bytes, reader =>
    {
        IngestMark mark = ReadIngestMark(reader, written: 0);
        return reader.BaseStream.Position + sizeof(long) <= reader.BaseStream.Length ? mark with { Written = reader.ReadInt64() } : mark;
    });

    private static T DecodeWith<T>(ReadOnlySpan<byte> bytes, Func<BinaryReader, T> read)
    {
        using var reader = new BinaryReader(new MemoryStream(bytes.ToArray()), Encoding.UTF8);
        return read(reader);
    }

    internal static void Write(BinaryWriter writer, ConceptRecord concept)
    {
        writer.Write(concept.Id);
        writer.Write(concept.Name);
        WriteVector(writer, concept.Vector);
        WriteMap(writer, concept.Metadata);
    }

    private static ConceptRecord ReadConcept(BinaryReader reader) =>
        new(reader.ReadInt32(), reader.ReadString(), ReadVector(reader) ?? [], ReadMap(reader) ?? EmptyMap);

    internal static void Write(BinaryWriter writer, RelationRecord relation)
    {
        writer.Write(relation.Id);
        writer.Write(relation.Name);
        WriteVector(writer, relation.Vector);
        writer.Write(relation.Symmetric);
        writer.Write(relation.Transitive);
        writer.Write(relation.InverseId);
        writer.Write(relation.Compositions.Count);
        foreach ((int first, int second) in relation.Compositions)
        {
            writer.Write(first);
            writer.Write(second);
        }

        writer.Write((byte)relation.Operator);
        // One byte: 0 untrained, else 1 + the norm it was trained with. Records written before the
        // norm was kept hold 1 whatever the norm, and are read as L1, the default then: a relation
        // trained with L2 through the API (the CLI had no norm option) is read as L1, which only
        // Evaluate's TransE scoring uses, until it is trained again.
        writer.Write((byte)(relation.Trained ? 1 + (int)relation.TrainedNorm : 0));
        writer.Write(relation.Learned?.Count ?? 0);
        foreach (LearnedRule rule in relation.Learned ?? [])
        {
            writer.Write((byte)rule.Kind);
            writer.Write(rule.Other);
            writer.Write(rule.First);
            writer.Write(rule.Second);
            writer.Write(rule.Statistics.Support);
            writer.Write(rule.Statistics.BodySize);
            writer.Write(rule.Statistics.Confidence);
            writer.Write(rule.Statistics.PcaConfidence);
            writer.Write(rule.Statistics.HeadCoverage);
        }
    }

    private static RelationRecord ReadRelation(BinaryReader reader)
    {
        int id = reader.ReadInt32();
        string name = reader.ReadString();
        float[]? vector = ReadVector(reader);
        bool symmetric = reader.ReadBoolean();
        bool transitive = reader.ReadBoolean();
        int inverse = reader.ReadInt32();
        int count = reader.ReadInt32();
        var compositions = new (int, int)[count];
        for (int i = 0; i < count; i++)
        {
            compositions[i] = (reader.ReadInt32(), reader.ReadInt32());
        }

        var @operator = (RelationOperator)reader.ReadByte();
        byte trainedWith = reader.ReadByte();
        var learned = new LearnedRule[reader.ReadInt32()];
        for (int i = 0; i < learned.Length; i++)
        {
            learned[i] = new LearnedRule(
                (PropertyKind)reader.ReadByte(),
                reader.ReadInt32(),
                reader.ReadInt32(),
                reader.ReadInt32(),
                new RuleStatistics(reader.ReadInt64(), reader.ReadInt64(), reader.ReadDouble(), reader.ReadDouble(), reader.ReadDouble()));
        }

        return new RelationRecord(
            id, name, vector, symmetric, transitive, inverse, compositions, @operator, trainedWith != 0, learned.Length == 0 ? null : learned,
            trainedWith == 2 ? DistanceNorm.L2 : DistanceNorm.L1);
    }

    internal static void Write(BinaryWriter writer, EdgeRecord edge)
    {
        writer.Write(edge.Id);
        writer.Write(edge.Head);
        writer.Write(edge.Relation);
        writer.Write(edge.Tail);
        writer.Write(edge.Weight);
        WriteMap(writer, edge.Payload);
    }

    private static EdgeRecord ReadEdge(BinaryReader reader) =>
        new(reader.ReadInt32(), reader.ReadInt32(), reader.ReadInt32(), reader.ReadInt32(), reader.ReadSingle(), ReadMap(reader));

    /// <summary>A mark as logged: its <see cref="IngestMark.Written"/> is the entry's sequence number.</summary>
    internal static void Write(BinaryWriter writer, IngestMark mark)
    {
        writer.Write(mark.Id);
        writer.Write(mark.Session);
        writer.Write(mark.Sequence);
    }

    /// <summary>A mark's record as the state store holds it (see <see cref="WriteStored"/>).</summary>
    public static byte[] EncodeStored(IngestMark mark)
    {
        using var record = new MemoryStream();
        using (var writer = new BinaryWriter(record, Encoding.UTF8, leaveOpen: true))
        {
            WriteStored(writer, mark);
        }

        return record.ToArray();
    }

    /// <summary>A mark as the state store holds it: as logged, then <see cref="IngestMark.Written"/>,
    /// which the store has no entry to take it from. Versions that did not keep it read the record
    /// as before, ignoring the 8 bytes after it, and theirs read here as written at 0.</summary>
    internal static void WriteStored(BinaryWriter writer, IngestMark mark)
    {
        Write(writer, mark);
        writer.Write(mark.Written);
    }

    private static IngestMark ReadIngestMark(BinaryReader reader, long written) => new(reader.ReadInt32(), reader.ReadString(), reader.ReadInt64(), written);

    /// <summary>A mark written by <see cref="WriteStored"/>.</summary>
    private static IngestMark ReadStoredIngestMark(BinaryReader reader)
    {
        IngestMark mark = ReadIngestMark(reader, written: 0);
        return mark with { Written = reader.ReadInt64() };
    }

    private static void WriteVector(BinaryWriter writer, float[]? vector)
    {
        if (vector is null)
        {
            writer.Write(-1);
            return;
        }

        writer.Write(vector.Length);
        writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(vector.AsSpan()));
    }

    private static float[]? ReadVector(BinaryReader reader)
    {
        int length = reader.ReadInt32();
        if (length < 0)
        {
            return null;
        }

        var vector = new float[length];
        int read = reader.Read(System.Runtime.InteropServices.MemoryMarshal.AsBytes(vector.AsSpan()));
        if (read != length * sizeof(float))
        {
            throw new EndOfStreamException("truncated vector");
        }

        return vector;
    }

    private static void WriteMap(BinaryWriter writer, IReadOnlyDictionary<string, string>? map)
    {
        if (map is null || map.Count == 0)
        {
            writer.Write(0);
            return;
        }

        writer.Write(map.Count);
        foreach ((string key, string value) in map.OrderBy(pair => pair.Key, StringComparer.Ordinal))
        {
            writer.Write(key);
            writer.Write(value);
        }
    }

    private static Dictionary<string, string>? ReadMap(BinaryReader reader)
    {
        int count = reader.ReadInt32();
        if (count == 0)
        {
            return null;
        }

        var map = new Dictionary<string, string>(count, StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            map[reader.ReadString()] = reader.ReadString();
        }

        return map;
    }

    public static IReadOnlyDictionary<string, string> EmptyMap { get; } = new Dictionary<string, string>();
}
