using System.Diagnostics;
using AssocDB.Engine.Model;
using AssocDB.Engine.Tests.Support;

namespace AssocDB.Engine.Tests.Graph;

// Guards that the long read queries stop when their caller gives up (the server passes each call's
// deadline and cancellation here): a proof search over a graph whose proofs explode is abandoned
// mid-run, an already cancelled call does no work, and the collection answers normally afterwards.
public sealed class CancellationTests : IAsyncLifetime
{
    private const int Nodes = 300, FanOut = 8, ComposedRelations = 40;
    private readonly TestDatabase _db = new();
    private Collection _graph = null!;

    public async Task InitializeAsync()
    {
        // A transitive relation on a DAG where every node reaches the next 8: the number of proof
        // chains grows exponentially with depth, so a search runs to the work bound, which takes
        // about a tenth of a second (relate's searches, one per relation, share one bound). Each
        // "via_i" relation is derived by composition from it.
        _graph = _db.Create("cancel", dimension: 4);
        (await _graph.DefineRelationAsync(new RelationSpec("reaches", Vector: [1f, 0f, 0f, 0f], Transitive: true))).AssertOk();
        for (int i = 0; i < ComposedRelations; i++)
        {
            (await _graph.DefineRelationAsync(new RelationSpec($"via_{i}", Compositions: [new Composition("reaches", "reaches")]))).AssertOk();
        }

        var facts = new List<FactInput>();
        for (int node = 0; node < Nodes; node++)
        {
            for (int step = 1; step <= FanOut && node + step < Nodes; step++)
            {
                facts.Add(new FactInput($"n{node}", "reaches", $"n{node + step}"));
            }
        }

        (await _graph.AddFactsAsync(facts)).AssertOk();
    }

    public async Task DisposeAsync() => await _db.DisposeAsync();

    [Fact]
    public void Relate_over_exploding_proofs_stops_when_cancelled_mid_run()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(10));
        var clock = Stopwatch.StartNew();
        Assert.ThrowsAny<OperationCanceledException>(() => _graph.Relate("n0", $"n{Nodes - 1}", options: new RelatedOptions(MaxDepth: 16), cancellationToken: cancel.Token));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"relate took {clock.Elapsed} to notice the cancel");

        // The read lock was released: the same collection answers a shallow query at once.
        RelateResult shallow = _graph.Relate("n0", "n1", options: new RelatedOptions(MaxDepth: 0)).AssertOk();
        Assert.Equal(AnswerKind.Stored, Assert.Single(shallow.Graph, r => r.Relation == "reaches").Kind);
    }

    [Fact]
    public void Already_cancelled_queries_do_no_work()
    {
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => _graph.Related("n0", "reaches", cancellationToken: cancel.Token));
        Assert.ThrowsAny<OperationCanceledException>(() => _graph.Relate("n0", "n1", cancellationToken: cancel.Token));
        Assert.ThrowsAny<OperationCanceledException>(() => _graph.Recall(new RecallQuery("reaches", Concept: "n0"), cancel.Token));

        Assert.Contains(_graph.Related("n0", "reaches", new RelatedOptions(MaxDepth: 0)).AssertOk(), a => a.Concept == "n1");
    }
}
