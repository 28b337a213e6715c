using AssocDB.Engine.Model;
using AssocDB.Engine.Storage;

namespace AssocDB.Engine;

public sealed partial class Collection
{
    /// <summary>
    /// The bulk path: applies one batch of a resumable ingest. Invalid items are skipped and
    /// reported instead of failing the batch; the valid ones are logged in one entry together with
    /// the session's new sequence mark, so after any crash either both are durable or neither is.
    /// A sequence at or below the session's last durable one is answered as already applied,
    /// without writing, which makes resending after a dropped connection harmless; its invalid
    /// items are reported all the same.
    /// </summary>
    public Task<Result<IngestResult>> IngestAsync(IngestBatch batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(batch.Concepts);
        ArgumentNullException.ThrowIfNull(batch.Facts);
        // Checked before the writer lock: the checks read nothing a write changes (the items, the
        // dimension and the metric), so one stream's batch is checked while another's is written.
        var reader = new FactReader(batch.Facts);
        EngineError?[]? conceptErrors = ValidateAll(batch.Concepts.Count, i => ValidateConcept(batch.Concepts[i], i));
        EngineError?[]? factErrors = ValidateAll(batch.Facts.Count, i => ValidateFact(reader, i));
        return WriteAsync(() => PlanIngest(batch, conceptErrors, factErrors), "batch", cancellationToken);
    }

    /// <summary>The last durable sequence of an ingest session, or −1 when it has none.</summary>
    public Result<long> LastIngestedSequence(string session) =>
        Read<long>(() => _ingestMarks.TryGet(session, out IngestMark? mark) ? mark.Sequence : -1, whileStopped: true);

    /// <summary>How many ingest sessions have marks (at most <see cref="DatabaseOptions.IngestSessionsKept"/>
    /// once a new session has written since the limit was lowered).</summary>
    internal Result<int> IngestSessionCount => Read<int>(() => _ingestMarks.Count, whileStopped: true);

    /// <summary>The items without an error, in order (the list itself when all are valid, as a
    /// bulk load's batches are; else a list of them, packed facts made into <see cref="FactInput"/>s);
    /// each error becomes a rejection.</summary>
    private static IReadOnlyList<T> ValidOnly<T>(IReadOnlyList<T> items, EngineError?[]? errors, List<IngestRejection> rejected)
    {
        if (errors is null)
        {
            return items;
        }

        var valid = new List<T>(items.Count);
        for (int i = 0; i < items.Count; i++)
        {
            if (errors[i] is { } invalid)
            {
                rejected.Add(new IngestRejection(invalid.Field, invalid.Message));
            }
            else
            {
                valid.Add(items[i]);
            }
        }

        return valid;
    }

    private Result<Planned<IngestResult>> PlanIngest(IngestBatch batch, EngineError?[]? conceptErrors, EngineError?[]? factErrors)
    {
        EngineError? error = Validation.Name(batch.Session, "session")
            ?? (batch.Sequence < 0 ? EngineError.Invalid("sequence", $"is {batch.Sequence}; it must be ≥ 0") : null);
        if (error is not null)
        {
            return error;
        }

        var rejected = new List<IngestRejection>();
        IReadOnlyList<ConceptInput> concepts = ValidOnly(batch.Concepts, conceptErrors, rejected);
        IReadOnlyList<FactInput> facts = ValidOnly(batch.Facts, factErrors, rejected);
        if (_ingestMarks.TryGet(batch.Session, out IngestMark? mark) && batch.Sequence <= mark.Sequence)
        {
            // The checks depend on nothing but the items and the collection's dimension and metric,
            // so a batch resent unchanged gets the rejections its write reported, which a client
            // whose acknowledgement was lost, or a later run of it, has not seen.
            var skipped = new IngestResult(true, new WriteSummary(0, concepts.Count), new WriteSummary(0, facts.Count), rejected);
            return new Planned<IngestResult>([], _ => skipped);
        }

        var planner = new BatchPlanner(this);
        WriteSummary conceptSummary = planner.UpsertConcepts(concepts);
        WriteSummary factSummary = planner.AddFacts(facts);
        var deleted = new List<int>();
        var moved = new List<IngestMark>();
        int markId = _ingestMarks.IdFor(batch.Session, _ingestSessionsKept, deleted, moved);
        List<Mutation> mutations = planner.Complete();
        // Deletes first: a moved mark's put takes its session from the id it leaves.
        mutations.AddRange(deleted.Select(id => new Mutation.DeleteIngestMark(id)));
        mutations.AddRange(moved.Select(mark => new Mutation.PutIngestMark(mark, Moved: true)));
        // Planned under the writer lock: the batch is logged as the next entry.
        mutations.Add(new Mutation.PutIngestMark(new IngestMark(markId, batch.Session, batch.Sequence, _logSequence + 1)));
        var result = new IngestResult(false, conceptSummary, factSummary, rejected);
        return new Planned<IngestResult>(mutations, _ => result);
    }
}
