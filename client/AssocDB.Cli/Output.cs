using System.Globalization;
using System.Text.Json;
using Google.Protobuf;

namespace AssocDB.Cli;

/// <summary>Writes results as aligned tables for people, or as JSON (proto3 JSON mapping) for scripts.</summary>
internal sealed class Output(TextWriter writer, bool json)
{
    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithFormatDefaultValues(true));

    public bool Json => json;

    /// <summary>Writes <paramref name="message"/> as JSON when the output is JSON, and says whether
    /// it did (then the caller's table is not wanted).</summary>
    public bool WroteJson(IMessage message)
    {
        if (json)
        {
            writer.WriteLine(Formatter.Format(message));
        }

        return json;
    }

    /// <summary>A message and a value as one JSON object, <c>{"messageName": message, "name": value}</c>.</summary>
    public void MessageWithValue(string messageName, IMessage message, string name, object value) =>
        writer.WriteLine($"{{{JsonSerializer.Serialize(messageName)}:{Formatter.Format(message)},{JsonSerializer.Serialize(name)}:{JsonSerializer.Serialize(value)}}}");

    /// <summary>One message: JSON, or a two-column table of its rendered fields.</summary>
    public void Message(IMessage message, params (string Name, string Value)[] fields)
    {
        if (!WroteJson(message))
        {
            Table(["field", "value"], fields.Select(f => new[] { f.Name, f.Value }));
        }
    }

    /// <summary>A list of messages: a JSON array, or a table of the given columns.</summary>
    public void List<T>(IEnumerable<T> items, string[] headers, Func<T, string[]> row)
        where T : IMessage
    {
        if (json)
        {
            writer.WriteLine("[" + string.Join(",", items.Select(i => Formatter.Format(i))) + "]");
            return;
        }

        Table(headers, items.Select(row));
    }

    /// <summary>Named values: a JSON object, or a two-column table.</summary>
    public void Map(IReadOnlyDictionary<string, object> fields)
    {
        if (json)
        {
            writer.WriteLine(JsonSerializer.Serialize(fields));
            return;
        }

        Table(["field", "value"], fields.Select(f => new[] { f.Key, Convert.ToString(f.Value, CultureInfo.InvariantCulture) ?? "" }));
    }

    /// <summary>A plain value: JSON, or its text.</summary>
    public void Value(string name, object value)
    {
        writer.WriteLine(json ? JsonSerializer.Serialize(new Dictionary<string, object> { [name] = value }) : Convert.ToString(value, CultureInfo.InvariantCulture));
    }

    /// <summary>Rows under headers, for people (no JSON form: callers print JSON messages instead).</summary>
    public void Rows(string[] headers, IEnumerable<string[]> rows) => Table(headers, rows);

    /// <summary>An empty line between two tables.</summary>
    public void Blank() => writer.WriteLine();

    public static string Number(double value) => value.ToString("0.####", CultureInfo.InvariantCulture);

    private void Table(string[] headers, IEnumerable<string[]> rows)
    {
        List<string[]> all = [headers, .. rows];
        int[] widths = [.. headers.Select((_, c) => all.Max(r => r[c].Length))];
        foreach (string[] row in all)
        {
            writer.WriteLine(string.Join("  ", row.Select((cell, c) => c == row.Length - 1 ? cell : cell.PadRight(widths[c]))).TrimEnd());
        }
    }
}
