using AssocDB.Engine.Model;
using AssocDB.Engine.Tests.Support;
using AssocDB.Engine.Vectors;

namespace AssocDB.Engine.Tests.Graph;

// Guards input validation: every bad input gets a typed error naming the field (and the batch
// item), and changes nothing — not even the good items of the same batch.
public sealed class BadInputTests : DatabaseTests
{
    private Collection _collection = null!;

    public override async Task InitializeAsync()
    {
        _collection = Db.Create(dimension: 4);
        (await _collection.AddFactsAsync([new FactInput("a", "r", "b")])).AssertOk();
    }

    private async Task AssertNothingChangedAsync(Func<Task> attempt)
    {
        CollectionInfo before = _collection.Describe().AssertOk();
        await attempt();
        Assert.Equal(before, _collection.Describe().AssertOk());
        Assert.Equal(NameVectorOf("a"), _collection.GetConcept("a").AssertOk().Vector);
    }

    private static float[] NameVectorOf(string name) => NameVector.For(name, 4);

    public static TheoryData<string, string> BadNames => new()
    {
        { "", "must not be empty" },
        { new string('x', 1025), "is 1025 bytes of UTF-8; the limit is 1024" },
        { new string('é', 513), "is 1026 bytes of UTF-8; the limit is 1024" },
    };

    [Theory]
    [MemberData(nameof(BadNames))]
    public async Task Bad_names_are_refused_naming_the_batch_item(string name, string message)
    {
        await AssertNothingChangedAsync(async () =>
        {
            EngineError error = (await _collection.AddFactsAsync([new FactInput("c", "r", "d"), new FactInput("c", "r", name)]))
                .AssertError(ErrorCode.InvalidArgument, "facts[1].tail");
            Assert.Contains(message, error.Message);
            (await _collection.UpsertConceptsAsync([new ConceptInput(name)])).AssertError(ErrorCode.InvalidArgument, "concepts[0].name");
            (await _collection.DefineRelationAsync(new RelationSpec(name))).AssertError(ErrorCode.InvalidArgument, "name");
        });
        Db.Database.CreateCollection(new CollectionSpec(name, 4)).AssertError(ErrorCode.InvalidArgument, "name");
    }

    [Fact]
    public async Task Names_and_map_values_with_unpaired_surrogates_are_refused()
    {
        // Not a theory case: xunit would replace the lone surrogate while serializing the data.
        // Map values were accepted, kept as given in memory and stored with U+FFFD instead, so a
        // metadata filter on them matched until the next reopen.
        await AssertNothingChangedAsync(async () =>
        {
            EngineError error = (await _collection.AddFactsAsync([new FactInput("bad\ud800name", "r", "d")]))
                .AssertError(ErrorCode.InvalidArgument, "facts[0].head");
            Assert.Contains("not well-formed", error.Message);
            var unpaired = new Dictionary<string, string> { ["k"] = "x\ud800y" };
            (await _collection.UpsertConceptsAsync([new ConceptInput("c", Metadata: unpaired)])).AssertError(ErrorCode.InvalidArgument, "concepts[0].metadata[k]");
            (await _collection.AddFactsAsync([new FactInput("a", "r", "d", Payload: unpaired)])).AssertError(ErrorCode.InvalidArgument, "facts[0].payload[k]");
        });
    }

    [Fact]
    public async Task A_name_of_exactly_one_kibibyte_is_accepted()
    {
        (await _collection.UpsertConceptsAsync([new ConceptInput(new string('x', 1024))])).AssertOk();
    }

    [Fact]
    public async Task Wrong_dimensions_and_non_finite_components_are_refused()
    {
        await AssertNothingChangedAsync(async () =>
        {
            EngineError error = (await _collection.UpsertConceptsAsync([new ConceptInput("a", [1, 2, 3, 4]), new ConceptInput("x", [1, 2, 3])]))
                .AssertError(ErrorCode.InvalidArgument, "concepts[1].vector");
            Assert.Contains("dimension is 4", error.Message);
            (await _collection.UpsertConceptsAsync([new ConceptInput("a", [1, float.NaN, 3, 4])])).AssertError(ErrorCode.InvalidArgument, "concepts[0].vector[1]");
            (await _collection.UpsertConceptsAsync([new ConceptInput("a", [1, 2, float.PositiveInfinity, 4])])).AssertError(ErrorCode.InvalidArgument, "concepts[0].vector[2]");
            (await _collection.DefineRelationAsync(new RelationSpec("r", [1, 2]))).AssertError(ErrorCode.InvalidArgument, "vector");
            // Finite, but ‖v‖² is beyond a fifth of float32's range: scores of two such vectors
            // overflow (a farther row then tied the nearest at +∞ and won on its row id).
            Assert.Contains("squared norm", (await _collection.UpsertConceptsAsync([new ConceptInput("a", [1e19f, 0, 0, 0])])).AssertError(ErrorCode.InvalidArgument, "concepts[0].vector").Message);
            _collection.Search([new SearchQuery(Vector: [0, 0, 1e19f, 0])], new SearchOptions(K: 1)).AssertError(ErrorCode.InvalidArgument, "queries[0].vector");
        });
    }

    // Each vector was within the bound, but c + r was not checked: its dot and l2 scores overflowed
    // and the nearest row lost to a farther one on its row id.
    [Fact]
    public async Task A_query_whose_sum_passes_the_norm_bound_is_refused()
    {
        Collection dot = Db.Create("dot", dimension: 4, metric: Metric.Dot);
        (await dot.UpsertConceptsAsync([new ConceptInput("b", [8e18f, 0, 0, 0]), new ConceptInput("s", [1, 0, 0, 0])])).AssertOk();
        (await dot.DefineRelationAsync(new RelationSpec("r", [8e18f, 0, 0, 0]))).AssertOk();

        dot.Search([new SearchQuery(Concept: "b", Plus: ["r"])], new SearchOptions(K: 2)).AssertError(ErrorCode.InvalidArgument, "queries[0].plus");
        Assert.Equal("b", dot.Search([new SearchQuery(Concept: "s", Plus: ["r"])], new SearchOptions(K: 1)).AssertOk()[0][0].Concept);
    }

    [Fact]
    public async Task Non_finite_weights_are_refused()
    {
        await AssertNothingChangedAsync(async () =>
        {
            (await _collection.AddFactsAsync([new FactInput("a", "r", "b", float.NaN)])).AssertError(ErrorCode.InvalidArgument, "facts[0].weight");
            (await _collection.AddFactsAsync([new FactInput("x", "r", "y"), new FactInput("a", "r", "b", float.NegativeInfinity)]))
                .AssertError(ErrorCode.InvalidArgument, "facts[1].weight");
        });
    }

    [Fact]
    public async Task Rules_naming_unknown_relations_are_refused()
    {
        await AssertNothingChangedAsync(async () =>
        {
            (await _collection.DefineRelationAsync(new RelationSpec("g", Compositions: [new Composition("r", "nope")])))
                .AssertError(ErrorCode.NotFound, "compositions[0].second");
            // An empty name is a malformed request, not a missing relation.
            (await _collection.DefineRelationAsync(new RelationSpec("g", Compositions: [new Composition("", "r")])))
                .AssertError(ErrorCode.InvalidArgument, "compositions[0].first");
        });
        _collection.GetRelation("g").AssertError(ErrorCode.NotFound, "name");
    }

    [Fact]
    public async Task A_relation_may_be_its_own_inverse_only_when_symmetric()
    {
        await AssertNothingChangedAsync(async () =>
            (await _collection.DefineRelationAsync(new RelationSpec("r", InverseOf: "r"))).AssertError(ErrorCode.InvalidArgument, "inverse_of"));

        RelationInfo spouse = (await _collection.DefineRelationAsync(new RelationSpec("spouse_of", Symmetric: true, InverseOf: "spouse_of"))).AssertOk();
        Assert.Equal("spouse_of", spouse.InverseOf);
        (await _collection.DefineRelationAsync(new RelationSpec("spouse_of", Symmetric: false))).AssertError(ErrorCode.InvalidArgument, "symmetric");
    }

    [Fact]
    public async Task Unknown_collections_concepts_and_relations_are_not_found()
    {
        Db.Database.GetCollection("nope").AssertError(ErrorCode.NotFound, "collection");
        _collection.GetConcept("nope").AssertError(ErrorCode.NotFound, "name");
        _collection.Related("nope", "r").AssertError(ErrorCode.NotFound, "concept");
        _collection.Related("a", "nope").AssertError(ErrorCode.NotFound, "relation");
        _collection.Neighbors("a", "nope").AssertError(ErrorCode.NotFound, "relation");
        await AssertNothingChangedAsync(async () =>
            (await _collection.DeleteConceptsAsync(["a", "nope"])).AssertError(ErrorCode.NotFound, "names[1]"));
    }

    [Fact]
    public void Bad_collection_definitions_and_query_bounds_are_refused()
    {
        Db.Database.CreateCollection(new CollectionSpec("c", 0)).AssertError(ErrorCode.InvalidArgument, "dimension");
        Db.Database.CreateCollection(new CollectionSpec("c", 4097)).AssertError(ErrorCode.InvalidArgument, "dimension");
        Db.Database.CreateCollection(new CollectionSpec("c", 4, (Metric)7)).AssertError(ErrorCode.InvalidArgument, "metric");
        Db.Database.CreateCollection(new CollectionSpec("test", 4)).AssertError(ErrorCode.AlreadyExists, "name");
        _collection.Related("a", "r", new RelatedOptions(MaxDepth: -1)).AssertError(ErrorCode.InvalidArgument, "max_depth");
        _collection.Related("a", "r", new RelatedOptions(Limit: 0)).AssertError(ErrorCode.InvalidArgument, "limit");
        _collection.Neighbors("a", limit: 0).AssertError(ErrorCode.InvalidArgument, "limit");
        _collection.Neighbors("a", after: -2).AssertError(ErrorCode.InvalidArgument, "after");
    }

    // A relation's rules are kept in its one record: repeats are stored once, and more than 1,024
    // distinct rules are refused, so the record always fits a state-store page. Repeats used to
    // count against the limit although only one of them is kept.
    [Fact]
    public async Task Composition_rules_are_stored_once_and_capped()
    {
        var repeated = Enumerable.Repeat(new Composition("r", "r"), Collection.MaxCompositions + 1).ToList();
        (await _collection.DefineRelationAsync(new RelationSpec("r2", Compositions: repeated))).AssertOk();
        Assert.Equal([new Composition("r", "r")], _collection.GetRelation("r2").AssertOk().Compositions);

        string[] names = [.. Enumerable.Range(0, 33).Select(i => $"x{i}")];
        foreach (string name in names)
        {
            (await _collection.DefineRelationAsync(new RelationSpec(name))).AssertOk();
        }

        var tooMany = names.SelectMany(first => names.Select(second => new Composition(first, second))).Take(Collection.MaxCompositions + 1).ToList();
        (await _collection.DefineRelationAsync(new RelationSpec("r3", Compositions: tooMany))).AssertError(ErrorCode.InvalidArgument, "compositions");
        Assert.False(_collection.GetRelation("r3").IsOk);
        (await _collection.DefineRelationAsync(new RelationSpec("r3", Compositions: tooMany[..^1]))).AssertOk();
    }

    // Concepts a write creates are logged with their vectors, so a batch of facts well within the
    // count limits can pass the log's entry size (4 MiB here: 3,000 facts create 6,000 concepts of
    // 512 floats, ~12 MiB). The refusal names the list that was sent and why it grew.
    [Fact]
    public async Task Facts_whose_new_concepts_pass_the_log_entry_size_are_refused_naming_facts()
    {
        Collection wide = Db.Create("wide", dimension: 512);
        FactInput[] facts = [.. Enumerable.Range(0, 3000).Select(i => new FactInput($"h{i}", "r", $"t{i}"))];

        EngineError error = (await wide.AddFactsAsync(facts)).AssertError(ErrorCode.ResourceExhausted, "facts");

        Assert.Contains("512-float vector", error.Message, StringComparison.Ordinal);
        Assert.Equal((0L, 0L), (wide.Describe().AssertOk().ConceptCount, wide.Describe().AssertOk().FactCount));
        (await wide.AddFactsAsync(facts[..500])).AssertOk();
    }

    // A concept's delete logs the deletes of its facts in the same entry (about 5 bytes each), so
    // a hub's can pass the entry size (64 KiB here) however few concepts it names; the refusal said "split it", which a one-concept
    // delete cannot be. It says what can be done, and that way works.
    [Fact]
    public async Task A_hub_whose_delete_passes_the_log_entry_size_is_refused_saying_how_to_delete_it()
    {
        await Db.ReopenAsync(logPageSizeBits: 16);
        Collection hubs = Db.Create("hubs", dimension: 4);
        FactInput[] facts = [.. Enumerable.Range(0, 20_000).Select(i => new FactInput("hub", "r", $"t{i}"))];
        foreach (FactInput[] batch in facts.Chunk(300))
        {
            (await hubs.AddFactsAsync(batch)).AssertOk();
        }

        EngineError refused = (await hubs.DeleteConceptsAsync(["hub"])).AssertError(ErrorCode.ResourceExhausted, "names");
        Assert.Contains("remove its facts first, a batch at a time, then delete it", refused.Message, StringComparison.Ordinal);
        Assert.Equal(20_000, hubs.Describe().AssertOk().FactCount);

        foreach (FactInput[] batch in facts.Chunk(1000))
        {
            (await hubs.RemoveFactsAsync([.. batch.Select(fact => new FactKey(fact.Head, fact.Relation, fact.Tail))])).AssertOk();
        }

        (await hubs.DeleteConceptsAsync(["hub"])).AssertOk();
        Assert.False(hubs.GetConcept("hub").IsOk);
    }
}
