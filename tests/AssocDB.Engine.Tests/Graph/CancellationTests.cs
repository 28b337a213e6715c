using System.Collections;
using AssocDB.Engine.Graph;
using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;
using AssocDB.Engine.Tests.Support;

namespace AssocDB.Engine.Tests.Graph;

// Guards that the long read queries stop when their caller gives up (the server passes each call's
// deadline and cancellation here): a proof search over a graph whose proofs explode is abandoned
// mid-run, an already cancelled call does no work, and the collection answers normally afterwards.
public sealed class CancellationTests : DatabaseTests
{
    private Collection _graph = null!;

    public override async Task InitializeAsync()
    {
        _graph = Db.Create("cancel", dimension: 4);
        (await _graph.DefineRelationAsync(new RelationSpec("reaches", Vector: [1f, 0f, 0f, 0f], Transitive: true))).AssertOk();
        (await _graph.AddFactsAsync([new FactInput("n0", "reaches", "n1")])).AssertOk();
    }

    // A transitive relation on a DAG where every node reaches the next 8: the proof chains grow
    // exponentially with depth, so uncancelled the search runs on to the work bound. A timer
    // cancelling it raced the search, which reaches the bound in about a tenth of a second here and
    // sooner on a faster machine; instead it is cancelled when the search reads the relation's
    // rules for the 100th time (it reads them once per query node it expands). So the cancel always
    // lands mid-run (the exception proves the search had more to do), and the search must notice
    // it at its next unit of work, before it expands another node.
    [Fact]
    public void A_proof_search_cancelled_mid_run_stops_before_expanding_another_node()
    {
        const int Nodes = 300, FanOut = 8, CancelAtRead = 100;
        using var cancel = new CancellationTokenSource();
        var rules = new RulesCancellingOnRead(cancel, CancelAtRead);
        var relations = new RelationTable();
        relations.Put(new RelationRecord(0, "reaches", null, Symmetric: false, Transitive: true, InverseId: -1, rules));
        var edges = new EdgeIndex();
        int edgeId = 0;
        for (int node = 0; node < Nodes; node++)
        {
            for (int step = 1; step <= FanOut && node + step < Nodes; step++)
            {
                edges.Put(new EdgeRecord(edgeId++, node, 0, node + step, 1f, null));
            }
        }

        var reasoner = new Reasoner(relations, edges, cancellationToken: cancel.Token);

        Assert.ThrowsAny<OperationCanceledException>(() => reasoner.Related(0, 0, Collection.MaxRelatedDepth));
        Assert.Equal(CancelAtRead, rules.Reads);
    }

    [Fact]
    public void Already_cancelled_queries_do_no_work()
    {
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => _graph.Related("n0", "reaches", cancellationToken: cancel.Token));
        Assert.ThrowsAny<OperationCanceledException>(() => _graph.Relate("n0", "n1", cancellationToken: cancel.Token));
        Assert.ThrowsAny<OperationCanceledException>(() => _graph.Recall(new RecallQuery("reaches", Concept: "n0"), cancel.Token));

        // Each cancelled call released the read lock: the collection still answers.
        Assert.Contains(_graph.Related("n0", "reaches", new RelatedOptions(MaxDepth: 0)).AssertOk(), a => a.Concept == "n1");
    }

    /// <summary>A relation's composition rules (none) that cancel the search reading them on its
    /// <c>cancelAt</c>-th read, and count every read, those after the cancel included.</summary>
    private sealed class RulesCancellingOnRead(CancellationTokenSource search, int cancelAt) : IReadOnlyList<(int First, int Second)>
    {
        public int Reads { get; private set; }

        public int Count => 0;

        public (int First, int Second) this[int index] => throw new ArgumentOutOfRangeException(nameof(index));

        public IEnumerator<(int First, int Second)> GetEnumerator()
        {
            if (++Reads == cancelAt)
            {
                search.Cancel();
            }

            return Enumerable.Empty<(int First, int Second)>().GetEnumerator();
        }

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
