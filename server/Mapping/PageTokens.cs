using System.Globalization;
using AssocDB.Server.Errors;

namespace AssocDB.Server.Mapping;

/// <summary>
/// The page tokens of listing replies: the decimal id of the last item a page returned, so the
/// next page starts after it. Ids only grow in a listing's order, which keeps a token valid
/// across writes.
/// </summary>
internal static class PageTokens
{
    /// <summary>Room a reply keeps for its token: tag, length and up to 10 digits.</summary>
    public const int Bytes = 12;

    /// <summary>The id a token reads on after; −1 for an empty token, the first page.</summary>
    public static int After(string token, string items) =>
        token.Length == 0 ? -1
        : int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out int after) ? after
        : throw GrpcErrors.InvalidArgument("page_token", $"is not a token a reply gave (the decimal id of the last {items} it returned)");

    /// <summary>The token to read on after <paramref name="last"/>; empty when nothing follows.</summary>
    public static string Of(int? last) => last?.ToString(CultureInfo.InvariantCulture) ?? "";
}
