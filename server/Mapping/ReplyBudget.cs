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
    /// <summary>
    /// Adds <paramref name="items"/> to <paramref name="list"/>, field <paramref name="fieldNumber"/>
    /// of <paramref name="reply"/>, while the reply stays within the limit with
    /// <paramref name="reserved"/> bytes left for fields set afterwards (a page token). Returns how
    /// many were added: all of them, or fewer when the next would pass the limit, but always at
    /// least one when there is one, so that paging moves on (a single item past the limit is then
    /// refused by the reply-size guard, naming the limit).
    /// </summary>
    public int Fill<T>(IMessage reply, RepeatedField<T> list, int fieldNumber, IEnumerable<T> items, int reserved = 0)
        where T : IMessage
    {
        long room = (long)options.Limits.MaxMessageBytes - reply.CalculateSize() - reserved;
        int tagBytes = CodedOutputStream.ComputeTagSize(fieldNumber);
        int added = 0;
        foreach (T item in items)
        {
            room -= tagBytes + CodedOutputStream.ComputeMessageSize(item);
            if (room < 0 && added > 0)
            {
                break;
            }

            list.Add(item);
            added++;
        }

        return added;
    }
}
