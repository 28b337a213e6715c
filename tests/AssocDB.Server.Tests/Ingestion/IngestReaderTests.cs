using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using AssocDB.Client.Ingestion;

namespace AssocDB.Server.Tests.Ingestion;

/// <summary>Every reader turns each usable line into items and each bad line into a rejection with
/// its line number and reason, and keeps going: one bad line never costs another.</summary>
public sealed class IngestReaderTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "assocdb-reader-tests", Guid.NewGuid().ToString("N"));

    public IngestReaderTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Tsv_reports_each_bad_line_by_number_and_reads_the_rest()
    {
        string longName = new('x', 1025);
        byte[] content = Bytes(
            "a\tr\tb\n",
            "only\ttwo\n",
            "c\tr\td\t0.5\n",
            "e\tr\tf\tNaN\n",
            "g\tr\th\tinf\n",
            $"{longName}\tr\ti\n",
            "\n",
            "j\t\tk\n",
            "l\tr\tm\r\n");
        content = [.. content, .. "n\tr\t"u8, 0xFF, 0xFE, .. "o\n"u8, .. "p\tr\tq"u8];
        List<IngestItem> items = Read("facts.tsv", content);

        Assert.Equal([(1, "a r b"), (3, "c r d 0.5"), (9, "l r m"), (11, "p r q")], Facts(items));
        Assert.Equal(
        [
            (2, "expected head, relation, tail[, weight]; found 2 fields"),
            (4, "weight is NaN; weights must be finite"),
            (5, "weight is inf; weights must be finite"),
            (6, "head is 1025 bytes of UTF-8; the limit is 1024"),
            (8, "relation is missing"),
            (10, "invalid UTF-8 at byte 5"),
        ], Rejections(items));
    }

    [Fact]
    public void Csv_understands_quotes_and_skips_a_header()
    {
        List<IngestItem> items = Read("facts.csv", Bytes(
            "head,relation,tail,weight\n",
            "\"Smith, J.\",knows,\"say \"\"hi\"\"\",2\n",
            "a,r,\"open\n",
            "a,r\"x,b\n"));
        Assert.Equal([(2, "Smith, J. knows say \"hi\" 2")], Facts(items));
        Assert.Equal([(3, "unterminated quoted field"), (4, "a quote inside an unquoted field at column 4")], Rejections(items));
    }

    // Spreadsheets export a trailing separator; the empty weight was rejected as "weight '' is not
    // a number", where `fact add --file` and the docs take it as the default.
    [Fact]
    public void An_empty_weight_is_none()
    {
        Assert.Equal([(1, "a r b"), (2, "c r d 2")], Facts(Read("trailing.tsv", Bytes("a\tr\tb\t\n", "c\tr\td\t2\n"))));
        Assert.Equal([(1, "a r b"), (2, "q r d")], Facts(Read("trailing.csv", Bytes("a,r,b,\n", "\"q\",r,d,\"\"\n"))));
        // Nor is a header with a trailing separator a fact.
        Assert.Equal([(2, "a r b")], Facts(Read("header.tsv", Bytes("head\trelation\ttail\t\n", "a\tr\tb\t\n"))));
        Assert.Equal([(2, "a r b")], Facts(Read("header.csv", Bytes("\"head\",relation,tail,\n", "a,r,b,\n"))));
        Assert.Equal([(2, "a r b")], Facts(Read("plain-header.csv", Bytes("head,relation,tail,\n", "a,r,b\n"))));
    }

    // Read as UTF-8, a UTF-16 file's ASCII lines were valid, a NUL beside each character, and
    // were stored as such; only its first line (the byte-order mark) was rejected.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_UTF16_file_is_refused_whole(bool bigEndian)
    {
        var utf16 = new UnicodeEncoding(bigEndian, byteOrderMark: true);
        var error = Assert.Throws<InvalidDataException>(() => Read("wide.tsv", [.. utf16.GetPreamble(), .. utf16.GetBytes("a\tr\tb\nc\tr\td\n")]));
        Assert.Contains("UTF-16", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_lines_carry_facts_concepts_vectors_payload_and_metadata()
    {
        List<IngestItem> items = Read("data.jsonl", Bytes(
            "{\"head\":\"a\",\"relation\":\"r\",\"tail\":\"b\",\"weight\":0.25,\"payload\":{\"src\":\"wiki\"},\"head_vector\":[1,0,0]}\n",
            "{\"name\":\"c\",\"vector\":[0,1,0],\"metadata\":{\"kind\":\"city\"}}\n",
            "{\"head\":\"a\",\"relation\":\"r\"}\n",
            "{\"name\":\"d\",\"vector\":[1,2]}\n",
            "{\"head\":\"a\",\"relation\":\"r\",\"tail\":\"b\",\"wieght\":1}\n",
            "{\"head\":\"a\",\"relation\":\"r\",\"tail\":\"b\",\"weight\":1e999}\n",
            "not json\n",
            "{\"name\":\"e\",\"metadata\":{\"n\":1}}\n"), new IngestReadOptions { Dimension = 3 });

        ConceptItem head = Assert.IsType<ConceptItem>(items[0]);
        Assert.Equal("a", head.Concept.Name);
        Assert.Equal([1f, 0, 0], head.Concept.Vector.Values);
        FactItem fact = Assert.IsType<FactItem>(items[1]);
        Assert.Equal((1L, 0.25f, "wiki"), (fact.Line, fact.Fact.Weight, fact.Fact.Payload["src"]));
        ConceptItem city = Assert.IsType<ConceptItem>(items[2]);
        Assert.Equal(("c", "city", 2L), (city.Concept.Name, city.Concept.Metadata["kind"], city.Line));
        Assert.Equal(
        [
            (3, "tail is missing"),
            (4, "vector has 2 components; expected 3"),
            (5, "unknown key 'wieght' in a fact line"),
            (6, "weight 1e999 is beyond float range; weights must be finite"),
        ], Rejections(items).Take(4));
        Assert.Equal([7L, 8L], Rejections(items).Skip(4).Select(r => r.Line));
        Assert.Equal("metadata.n must be a string", Rejections(items).Last().Reason);
    }

    // The server refuses a vector past its norm limit; a fact line's vectors travel as concepts of
    // their own beside its fact, so the fact was stored while the line was reported rejected.
    [Fact]
    public void A_fact_line_whose_vector_the_server_would_refuse_is_rejected_whole()
    {
        List<IngestItem> items = Read("data.jsonl", Bytes(
            "{\"head\":\"a\",\"relation\":\"r\",\"tail\":\"b\",\"head_vector\":[1e19,0,0]}\n",
            "{\"name\":\"c\",\"vector\":[5e18,5e18,5e18]}\n",
            "{\"name\":\"d\",\"vector\":[1e18,1e18,1e18]}\n"), new IngestReadOptions { Dimension = 3 });

        Assert.Equal(
        [
            (1, "head_vector has a squared norm of 1E+38, beyond 6.81E+37 (a fifth of float32's range, the server's limit, so that scores stay finite); scale it down"),
            (2, "vector has a squared norm of 7.5E+37, beyond 6.81E+37 (a fifth of float32's range, the server's limit, so that scores stay finite); scale it down"),
        ], Rejections(items));
        Assert.Equal("d", Assert.IsType<ConceptItem>(Assert.Single(items, item => item is not RejectedItem)).Concept.Name);
        // Each takes the numbers of the items it would be: a concept and a fact, then a concept.
        Assert.Equal([2, 1], items.OfType<RejectedItem>().Select(r => r.Items));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RejectedItem("f", 1, "r") { Items = 0 });

        // Under cosine, one too short to normalize too; zero is allowed, and so is any norm elsewhere.
        byte[] tiny = Bytes("{\"head\":\"a\",\"relation\":\"r\",\"tail\":\"b\",\"tail_vector\":[1e-31,0,0]}\n", "{\"name\":\"z\",\"vector\":[0,0,0]}\n");
        Assert.Equal(
            [(1L, "tail_vector has a norm of 1E-31; under cosine a vector must be zero or have a norm of at least 7.9e-31 (2^-100), or normalizing it overflows float32")],
            Rejections(Read("data.jsonl", tiny, new IngestReadOptions { Dimension = 3, Cosine = true })));
        Assert.Empty(Rejections(Read("data.jsonl", tiny, new IngestReadOptions { Dimension = 3 })));
    }

    [Fact]
    public void N_triples_map_iris_to_names_and_keep_literal_types_in_the_payload()
    {
        List<IngestItem> items = Read("data.nt", Bytes(
            "# a comment\n",
            "<http://ex.org/alice> <http://ex.org/knows> <http://ex.org/bob> .\n",
            "_:b1 <http://ex.org/name> \"Bob \\\"the\\\" Builder\"@en .\n",
            "<http://ex.org/bob> <http://ex.org/age> \"42\"^^<http://www.w3.org/2001/XMLSchema#integer> . # trailing\n",
            "<http://ex.org/caf\\u00E9> <http://ex.org/p> _:b1.\n",
            "<http://ex.org/a> <http://ex.org/p> <http://ex.org/b>\n",
            "<http://ex.org/a> \"literal predicate\" <http://ex.org/b> .\n"));

        var facts = items.OfType<FactItem>().ToList();
        Assert.Equal(4, facts.Count);
        Assert.Equal(("http://ex.org/alice", "http://ex.org/knows", "http://ex.org/bob"), (facts[0].Fact.Head, facts[0].Fact.Relation, facts[0].Fact.Tail));
        Assert.Equal(("_:b1", "Bob \"the\" Builder", "literal", "en"), (facts[1].Fact.Head, facts[1].Fact.Tail, facts[1].Fact.Payload["object"], facts[1].Fact.Payload["language"]));
        Assert.Equal(("42", "http://www.w3.org/2001/XMLSchema#integer"), (facts[2].Fact.Tail, facts[2].Fact.Payload["datatype"]));
        Assert.Equal(("http://ex.org/café", "_:b1", 5L), (facts[3].Fact.Head, facts[3].Fact.Tail, facts[3].Line));
        Assert.Empty(facts[0].Fact.Payload);
        Assert.Equal([(6L, "expected '.' after the object (column 54)"), (7L, "predicate must be an IRI <...> (column 19)")], Rejections(items));
    }

    [Fact]
    public void Vector_text_checks_width_and_skips_a_word2vec_header()
    {
        List<IngestItem> items = Read("emb.vec", Bytes("3 2\n", "a 1 2\n", "b 1\n", "c 1 nan\n", "d 1 x\n", "e\t0.5\t-1\n"));
        Assert.Equal(["a", "e"], items.OfType<ConceptItem>().Select(c => c.Concept.Name));
        Assert.Equal(
            [(3L, "vector has 1 components; expected 2"), (4L, "vector[1] is NaN; components must be finite"), (5L, "vector[1] 'x' is not a number")],
            Rejections(items));
    }

    [Theory]
    [InlineData("<f4")]
    [InlineData(">f8")]
    public void Npy_rows_pair_with_the_names_file(string type)
    {
        string npy = Path.Combine(_folder, "emb.npy");
        File.WriteAllBytes(npy, Npy(type, [[1, 2], [3, float.PositiveInfinity], [5, 6]]));
        File.WriteAllText(Path.Combine(_folder, "emb.names"), "alpha\nbeta\ngamma\n");
        using IngestSource source = IngestSource.Open(npy);
        List<IngestItem> items = [.. source.Read()];
        Assert.Equal(IngestFormat.Vectors, source.Format);
        Assert.Equal(["alpha 1: 1 2", "gamma 3: 5 6"], items.OfType<ConceptItem>().Select(c => $"{c.Concept.Name} {c.Line}: {string.Join(' ', c.Concept.Vector.Values)}"));
        Assert.Equal([(2L, "vector[1] is Infinity; components must be finite")], Rejections(items));
    }

    [Fact]
    public void Npy_with_a_names_file_of_another_length_is_refused_whole()
    {
        string npy = Path.Combine(_folder, "emb.npy");
        File.WriteAllBytes(npy, Npy("<f4", [[1, 2], [3, 4]]));
        File.WriteAllText(Path.Combine(_folder, "emb.names"), "only-one\n");
        using IngestSource source = IngestSource.Open(npy);
        var error = Assert.Throws<InvalidDataException>(() => source.Read().ToList());
        Assert.Contains("2 rows", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Gzip_files_are_read_transparently_and_progress_counts_file_bytes()
    {
        string path = Path.Combine(_folder, "facts.tsv.gz");
        using (var gzip = new GZipStream(File.Create(path), CompressionLevel.Fastest))
        {
            gzip.Write(Bytes(string.Concat(Enumerable.Range(0, 1000).Select(i => $"h{i}\tr\tt{i}\n"))));
        }

        using IngestSource source = IngestSource.Open(path);
        Assert.Equal(IngestFormat.Tsv, source.Format);
        Assert.Equal(1000, source.Read().OfType<FactItem>().Count());
        Assert.Equal(source.Length, source.BytesRead);
    }

    [Fact]
    public void Unknown_extensions_ask_for_a_format() =>
        Assert.Throws<ArgumentException>(() => IngestSource.Detect("facts.dat"));

    private List<IngestItem> Read(string name, byte[] content, IngestReadOptions? options = null)
    {
        string path = Path.Combine(_folder, name);
        File.WriteAllBytes(path, content);
        using IngestSource source = IngestSource.Open(path, IngestFormat.Auto, options);
        return [.. source.Read()];
    }

    private static byte[] Bytes(params string[] lines) => Encoding.UTF8.GetBytes(string.Concat(lines));

    private static List<(long, string)> Facts(List<IngestItem> items) =>
        [.. items.OfType<FactItem>().Select(f => (f.Line, string.Join(' ', new[] { f.Fact.Head, f.Fact.Relation, f.Fact.Tail }
            .Concat(f.Fact.HasWeight ? [f.Fact.Weight.ToString(System.Globalization.CultureInfo.InvariantCulture)] : []))))];

    private static List<(long Line, string Reason)> Rejections(List<IngestItem> items) =>
        [.. items.OfType<RejectedItem>().Select(r => (r.Line, r.Reason))];

    internal static byte[] Npy(string type, float[][] rows)
    {
        string header = $"{{'descr': '{type}', 'fortran_order': False, 'shape': ({rows.Length}, {rows[0].Length}), }}";
        header = header.PadRight(((header.Length + 11) / 64 + 1) * 64 - 11) + "\n";
        var bytes = new List<byte> { 0x93 };
        bytes.AddRange("NUMPY"u8.ToArray());
        bytes.AddRange([1, 0, (byte)(header.Length & 0xFF), (byte)(header.Length >> 8)]);
        bytes.AddRange(Encoding.Latin1.GetBytes(header));
        foreach (float value in rows.SelectMany(r => r))
        {
            byte[] element = new byte[type[2] == '4' ? 4 : 8];
            if (type == "<f4")
            {
                BinaryPrimitives.WriteSingleLittleEndian(element, value);
            }
            else
            {
                BinaryPrimitives.WriteDoubleBigEndian(element, value);
            }

            bytes.AddRange(element);
        }

        return [.. bytes];
    }
}
