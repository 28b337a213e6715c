using AssocDB.Protocol.V1;

namespace AssocDB.Client;

/// <summary>Builds search queries: a raw vector, or a concept plus and minus relations.</summary>
public static class Queries
{
    /// <summary>A raw vector query.</summary>
    public static SearchQuery Vector(IEnumerable<float> values) => new() { Vector = Vectors.Of(values) };

    /// <summary>A concept query, optionally moved by relation vectors (<c>c + r</c>: what is r of c?;
    /// <c>c − r</c>: whose r is c?).</summary>
    public static SearchQuery Concept(string concept, IEnumerable<string>? plus = null, IEnumerable<string>? minus = null)
    {
        var query = new SearchQuery { Concept = concept };
        query.Plus.AddRange(plus ?? []);
        query.Minus.AddRange(minus ?? []);
        return query;
    }
}

/// <summary>Converts between float sequences and the wire vector.</summary>
public static class Vectors
{
    /// <summary>A wire vector holding these values.</summary>
    public static Vector Of(IEnumerable<float> values)
    {
        var vector = new Vector();
        vector.Values.AddRange(values);
        return vector;
    }
}
