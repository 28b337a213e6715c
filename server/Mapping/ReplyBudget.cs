using AssocDB.Protocol.V1;
using AssocDB.Server.Configuration;
using Google.Protobuf;
using Google.Protobuf.Collections;

namespace AssocDB.Server.Mapping;

/// <summary>
/// Fills a reply's list up to the bytes the server sends (<c>Limits:MaxMessageBytes</c>), so that a
/// page or an answer list that a count limit admits, but whose items are large (payloads, long
/// names, wide vectors, many learned rules), comes back shorter instead of failing whole. The
/// caller says how the reply continues (a page token after the last item kept, or truncated).
/// </summary>
internal sealed class ReplyBudget(AssocServerOptions options)
{
    /// <summary>The fewest bytes a search hit takes in a reply: its tag and length, and its
    /// concept's name's (tag, length and one byte: a name is never empty); an id or score of zero
    /// takes none.</summary>
    private const int SmallestHitBytes = 5;

    /// <summary>The most bytes a reply may have.</summary>
    public int Limit => options.Limits.MaxMessageBytes;

    /// <summary>More hits per query than a search reply to <paramref name="queries"/> queries can
    /// hold, whatever the hits: a search for more would build hits only to drop them.</summary>
    public int MostHitsPerQuery(int queries) => (int)(Limit / ((long)Math.Max(queries, 1) * SmallestHitBytes));

    /// <summary>
    /// Adds <paramref name="items"/> to <paramref name="list"/>, field <paramref name="fieldNumber"/>
    /// of <paramref name="reply"/>, while the reply stays within the limit with
    /// <paramref name="reserved"/> bytes left for fields set afterwards (a page token). Returns how
    /// many were added: all of them, or fewer when the next would pass the limit, but at least one
    /// when there is one, so that paging moves on (a single item past the limit is then refused by
    /// the reply-size guard, naming the limit), unless <paramref name="mayBeEmpty"/>: a reply that
    /// counts what it leaves off, and must be sent, keeps none rather than one past the limit.
    /// </summary>
    public int Fill<T>(IMessage reply, RepeatedField<T> list, int fieldNumber, IEnumerable<T> items, int reserved = 0, bool mayBeEmpty = false)
        where T : IMessage
    {
        long room = (long)Limit - reply.CalculateSize() - reserved;
        int tagBytes = CodedOutputStream.ComputeTagSize(fieldNumber);
        int added = 0;
        foreach (T item in items)
        {
            room -= tagBytes + CodedOutputStream.ComputeMessageSize(item);
            if (room < 0 && (added > 0 || mayBeEmpty))
            {
                break;
            }

            list.Add(item);
            added++;
        }

        return added;
    }

    /// <summary>
    /// How many of each result's leading hits a search reply holds: all of them when the reply fits
    /// the limit; otherwise the most that fit with <paramref name="reserved"/> bytes left for the
    /// truncated flag, the same number for every result (each query keeps its best hits, and none
    /// is left with fewer than another); null when not even one hit per result fits, with
    /// <paramref name="bytes"/> the size the whole reply would have. Each hit is sized once.
    /// </summary>
    public int? HitsThatFit(IReadOnlyList<SearchHit[]> results, int reserved, out long bytes)
    {
        int hitTag = CodedOutputStream.ComputeTagSize(SearchResult.HitsFieldNumber);
        int resultTag = CodedOutputStream.ComputeTagSize(SearchResponse.ResultsFieldNumber);
        // Per result, the bytes of its first m hits, for every m.
        var leading = new long[results.Count][];
        int longest = 0;
        for (int r = 0; r < results.Count; r++)
        {
            SearchHit[] hits = results[r];
            leading[r] = new long[hits.Length + 1];
            for (int i = 0; i < hits.Length; i++)
            {
                leading[r][i + 1] = leading[r][i] + hitTag + CodedOutputStream.ComputeMessageSize(hits[i]);
            }

            longest = Math.Max(longest, hits.Length);
        }

        long ReplyBytes(int kept) => leading.Sum(sizes =>
        {
            long result = sizes[Math.Min(kept, sizes.Length - 1)];
            return resultTag + CodedOutputStream.ComputeLengthSize((int)Math.Min(result, int.MaxValue)) + result;
        });

        bytes = ReplyBytes(longest);
        if (bytes <= Limit)
        {
            return longest;
        }

        // The reply grows with the hits kept: the most that fit, by bisection.
        int low = 0, high = longest - 1;
        while (low < high)
        {
            int middle = (low + high + 1) / 2;
            if (ReplyBytes(middle) + reserved <= Limit)
            {
                low = middle;
            }
            else
            {
                high = middle - 1;
            }
        }

        return low > 0 ? low : null;
    }
}
