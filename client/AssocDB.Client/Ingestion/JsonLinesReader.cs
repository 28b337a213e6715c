using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using AssocDB.Protocol.V1;

namespace AssocDB.Client.Ingestion;

/// <summary>
/// Reads JSON Lines: one JSON object per line, either a fact
/// <c>{"head": "A", "relation": "r", "tail": "B", "weight": 0.5, "payload": {"k": "v"},
/// "head_vector": [..], "tail_vector": [..]}</c> (weight, payload and vectors optional; a vector
/// upserts its concept before the fact) or a concept <c>{"name": "A", "vector": [..],
/// "metadata": {"k": "v"}}</c> (vector and metadata optional). Payload and metadata values are
/// strings. Unknown keys reject the line, so a misspelt key is reported rather than dropped.
/// </summary>
internal static class JsonLinesReader
{
    private static readonly HashSet<string> FactKeys = ["head", "relation", "tail", "weight", "payload", "head_vector", "tail_vector"];
    private static readonly HashSet<string> ConceptKeys = ["name", "vector", "metadata"];

    public static IEnumerable<IngestItem> Read(Stream stream, string source, IngestReadOptions options)
    {
        var lines = new Utf8LineReader(stream);
        int? dimension = options.Dimension;
        var items = new List<IngestItem>(3);
        while (lines.TryRead(out ReadOnlyMemory<byte> bytes, out bool tooLong))
        {
            long line = lines.LineNumber;
            if (tooLong)
            {
                yield return new RejectedItem(source, line, Utf8LineReader.TooLong);
                continue;
            }

            if (bytes.Span.Trim(" \t"u8).IsEmpty)
            {
                continue;
            }

            if (!Utf8.IsValid(bytes.Span))
            {
                Utf8LineReader.Decode(bytes.Span, out string? badUtf8);
                yield return new RejectedItem(source, line, badUtf8!);
                continue;
            }

            items.Clear();
            string? error;
            int itemsOfLine = 1;
            try
            {
                using JsonDocument document = JsonDocument.Parse(bytes);
                JsonElement root = document.RootElement;
                if (root.ValueKind == JsonValueKind.Object)
                {
                    error = Parse(root, source, line, items, ref dimension, options.Cosine);
                    itemsOfLine = error is null ? itemsOfLine : ItemsOf(root);
                }
                else
                {
                    error = "a line must be a JSON object";
                }
            }
            catch (JsonException e)
            {
                error = $"not JSON: {e.Message}";
            }
            catch (InvalidOperationException e)
            {
                // Valid JSON whose string holds an escape that is no UTF-16 text (a lone surrogate,
                // "\ud800"): System.Text.Json throws this when the string is read.
                error = $"not text: {e.Message}";
            }

            if (error is not null)
            {
                yield return new RejectedItem(source, line, error) { Items = itemsOfLine };
                continue;
            }

            foreach (IngestItem item in items)
            {
                yield return item;
            }
        }
    }

    /// <summary>The items a line of this shape is when stored: a fact with each of its vectors a
    /// concept before it, or one concept.</summary>
    private static int ItemsOf(JsonElement root) =>
        root.TryGetProperty("head", out _) ? 1 + (root.TryGetProperty("head_vector", out _) ? 1 : 0) + (root.TryGetProperty("tail_vector", out _) ? 1 : 0) : 1;

    private static string? Parse(JsonElement root, string source, long line, List<IngestItem> items, ref int? dimension, bool cosine)
    {
        bool isFact = root.TryGetProperty("head", out _);
        if (!isFact && !root.TryGetProperty("name", out _))
        {
            return "a line is a fact (head, relation, tail) or a concept (name)";
        }

        HashSet<string> allowed = isFact ? FactKeys : ConceptKeys;
        foreach (JsonProperty property in root.EnumerateObject())
        {
            if (!allowed.Contains(property.Name))
            {
                return $"unknown key '{ItemChecks.Shorten(property.Name)}' in a {(isFact ? "fact" : "concept")} line";
            }
        }

        return isFact ? ParseFact(root, source, line, items, ref dimension, cosine) : ParseConcept(root, source, line, items, ref dimension, cosine);
    }

    private static string? ParseFact(JsonElement root, string source, long line, List<IngestItem> items, ref int? dimension, bool cosine)
    {
        string? head = null, relation = null, tail = null;
        string? error = String(root, "head", out head) ?? String(root, "relation", out relation) ?? String(root, "tail", out tail);
        if (error is not null)
        {
            return error;
        }

        var fact = new FactInput { Head = head, Relation = relation, Tail = tail };
        if (root.TryGetProperty("weight", out JsonElement weight))
        {
            if (weight.ValueKind != JsonValueKind.Number)
            {
                return "weight must be a number";
            }

            if (!weight.TryGetSingle(out float w) || !float.IsFinite(w))
            {
                return $"weight {ItemChecks.Shorten(weight.GetRawText())} is beyond float range; weights must be finite";
            }

            fact.Weight = w;
        }

        error = StringMap(root, "payload", fact.Payload);
        if (error is not null)
        {
            return error;
        }

        foreach ((string key, string name) in new[] { ("head_vector", head!), ("tail_vector", tail!) })
        {
            if (root.TryGetProperty(key, out JsonElement vector))
            {
                error = Vector(vector, key, ref dimension, cosine, out float[]? values);
                if (error is not null)
                {
                    return error;
                }

                items.Add(new ConceptItem(source, line, new ConceptInput { Name = name, Vector = Vectors.Of(values!) }));
            }
        }

        items.Add(new FactItem(source, line, fact));
        return null;
    }

    private static string? ParseConcept(JsonElement root, string source, long line, List<IngestItem> items, ref int? dimension, bool cosine)
    {
        string? error = String(root, "name", out string? name);
        if (error is not null)
        {
            return error;
        }

        var concept = new ConceptInput { Name = name };
        if (root.TryGetProperty("vector", out JsonElement vector))
        {
            error = Vector(vector, "vector", ref dimension, cosine, out float[]? values);
            if (error is not null)
            {
                return error;
            }

            concept.Vector = Vectors.Of(values!);
        }

        error = StringMap(root, "metadata", concept.Metadata);
        if (error is not null)
        {
            return error;
        }

        items.Add(new ConceptItem(source, line, concept));
        return null;
    }

    private static string? String(JsonElement root, string key, out string? value)
    {
        value = null;
        if (!root.TryGetProperty(key, out JsonElement element))
        {
            return $"{key} is missing";
        }

        if (element.ValueKind != JsonValueKind.String)
        {
            return $"{key} must be a string";
        }

        value = element.GetString();
        return ItemChecks.Name(value, key);
    }

    private static string? StringMap(JsonElement root, string key, IDictionary<string, string> target)
    {
        if (!root.TryGetProperty(key, out JsonElement map))
        {
            return null;
        }

        if (map.ValueKind != JsonValueKind.Object)
        {
            return $"{key} must be an object of strings";
        }

        long bytes = 0;
        foreach (JsonProperty entry in map.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
            {
                return $"{key}.{ItemChecks.Shorten(entry.Name)} must be a string";
            }

            if (ItemChecks.Name(entry.Name, $"a {key} key") is { } keyError)
            {
                return keyError;
            }

            string value = entry.Value.GetString()!;
            target[entry.Name] = value;
            bytes += Encoding.UTF8.GetByteCount(entry.Name) + Encoding.UTF8.GetByteCount(value);
        }

        return ItemChecks.MapSize(bytes, key);
    }

    private static string? Vector(JsonElement element, string key, ref int? dimension, bool cosine, out float[]? values)
    {
        values = null;
        if (element.ValueKind != JsonValueKind.Array)
        {
            return $"{key} must be an array of numbers";
        }

        var result = new float[element.GetArrayLength()];
        int i = 0;
        foreach (JsonElement component in element.EnumerateArray())
        {
            if (component.ValueKind != JsonValueKind.Number)
            {
                return $"{key}[{i}] is not a number";
            }

            if (!component.TryGetSingle(out result[i]))
            {
                return $"{key}[{i}] is beyond float range; components must be finite";
            }

            i++;
        }

        values = result;
        return ItemChecks.Vector(result, ref dimension, key, cosine);
    }
}
