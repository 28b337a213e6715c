using System.Globalization;
using System.Text;
using AssocDB.Client.Ingestion;
using AssocDB.Protocol.V1;
using Google.Protobuf;

namespace AssocDB.Server.Tests.Ingestion;

/// <summary>The bulk ingester encodes its requests itself, facts read from TSV and CSV straight from
/// their UTF-8 bytes; the bytes must be exactly those of the generated IngestRequest holding the
/// same items, whatever the items' form, names and weights.</summary>
public sealed class IngestRequestWriterTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("assocdb-writer-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Requests_are_the_generated_encoding_of_their_items()
    {
        var random = new Random(11);
        var writer = new IngestRequestWriter();
        for (int batch = 0; batch < 3; batch++)
        {
            List<IngestItem> items = [.. Read("facts.tsv", '\t', random), .. Read("facts.csv", ',', random), .. Messages(random)];
            items = [.. items.OrderBy(_ => random.Next())];
            // Both forms of fact take part: bytes (TSV, unquoted CSV) and messages (quoted CSV, given).
            Assert.Contains(items, item => item is FactItem { IsUtf8: true });
            Assert.Contains(items, item => item is FactItem { IsUtf8: false });
            var expected = new IngestRequest { Collection = "kg", Session = "s" + batch, Sequence = (batch * 1000) + items.Count };
            foreach (IngestItem item in items)
            {
                switch (item)
                {
                    case FactItem fact:
                        int size = writer.Add(fact);
                        expected.Facts.Add(fact.Fact);
                        Assert.Equal(fact.Fact.CalculateSize(), size);
                        break;
                    case ConceptItem concept:
                        Assert.Equal(concept.Concept.CalculateSize(), writer.Add(concept.Concept));
                        expected.Concepts.Add(concept.Concept);
                        break;
                }
            }

            Assert.Equal(expected.ToByteArray(), writer.Finish(expected.Collection, expected.Session, expected.Sequence));
        }
    }

    [Fact]
    public void A_fact_read_as_bytes_equals_the_same_fact_given_as_a_message()
    {
        string path = Path.Combine(_folder, "one.tsv");
        File.WriteAllText(path, "Zoë\tlikes\tthé\t0.25\n");
        using IngestSource source = IngestSource.Open(path);
        FactItem read = Assert.IsType<FactItem>(Assert.Single(source.Read()));
        var given = new FactItem(path, 1, new FactInput { Head = "Zoë", Relation = "likes", Tail = "thé", Weight = 0.25f });

        Assert.Equal(given, read);
        Assert.Equal(given.GetHashCode(), read.GetHashCode());
        (string file, long line, FactInput fact) = read;
        Assert.Equal((path, 1L, "thé"), (file, line, fact.Tail));
        Assert.NotEqual(given, read with { Line = 2 });
        Assert.Equal("other", (read with { Fact = new FactInput { Head = "other", Relation = "r", Tail = "t" } }).Fact.Head);
    }

    /// <summary>Facts read from a file of random lines: ASCII and multi-byte names, some long enough
    /// for a two-byte length, some with weights; CSV lines sometimes quoted (read as text).</summary>
    private List<IngestItem> Read(string name, char separator, Random random)
    {
        var text = new StringBuilder();
        for (int i = 0; i < 200; i++)
        {
            string head = Name(random);
            text.AppendJoin(separator, separator == ',' && random.Next(4) == 0 ? $"\"{head},\"\"\"" : head, Name(random), Name(random));
            if (random.Next(3) == 0)
            {
                text.Append(separator).Append(((random.NextSingle() * 200) - 100).ToString(CultureInfo.InvariantCulture));
            }

            text.Append('\n');
        }

        string path = Path.Combine(_folder, name);
        File.WriteAllText(path, text.ToString());
        using IngestSource source = IngestSource.Open(path);
        List<IngestItem> items = [.. source.Read()];
        Assert.DoesNotContain(items, item => item is RejectedItem);
        return items;
    }

    private static IEnumerable<IngestItem> Messages(Random random)
    {
        for (int i = 0; i < 20; i++)
        {
            var fact = new FactInput { Head = Name(random), Relation = Name(random), Tail = Name(random), Payload = { ["k" + i] = Name(random) } };
            yield return new FactItem("given", i, fact);
            var concept = new ConceptInput { Name = Name(random), Metadata = { ["m"] = "v" } };
            if (i % 2 == 0)
            {
                concept.Vector = new Vector { Values = { 1f, -2f, i } };
            }

            yield return new ConceptItem("given", i, concept);
        }
    }

    private static string Name(Random random) => random.Next(10) switch
    {
        0 => new string('n', 100 + random.Next(900)),
        1 => "naïve-名前-" + random.Next(1000),
        _ => "c" + random.Next(100_000),
    };
}
