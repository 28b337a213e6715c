using AssocDB.Engine.Model;
using AssocDB.Server.Hosting;
using Prometheus;

namespace AssocDB.Server.Metrics;

/// <summary>
/// The server's Prometheus metrics, in a registry of its own (so several servers in one process,
/// as in tests, do not share counters): calls and latencies per gRPC method, search batch sizes,
/// and the stored data's size, read from the database at each scrape.
/// </summary>
internal sealed class ServerMetrics
{
    public ServerMetrics(DatabaseHost database)
    {
        Registry = Prometheus.Metrics.NewCustomRegistry();
        MetricFactory factory = Prometheus.Metrics.WithCustomRegistry(Registry);
        Requests = factory.CreateCounter("assocdb_grpc_requests_total", "gRPC calls answered, by method and status code.", "method", "code");
        InFlight = factory.CreateGauge("assocdb_grpc_requests_in_flight", "gRPC calls being handled, by method.", "method");
        Latency = factory.CreateHistogram("assocdb_grpc_request_duration_seconds", "gRPC call latency, by method.",
            new HistogramConfiguration { LabelNames = ["method"], Buckets = Histogram.ExponentialBuckets(0.0001, 2, 18) });
        SearchBatchQueries = factory.CreateHistogram("assocdb_search_batch_queries", "Queries per batched engine search.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(1, 2, 12) });
        Gauge concepts = factory.CreateGauge("assocdb_concepts", "Concepts stored, all collections.");
        Gauge matrixBytes = factory.CreateGauge("assocdb_matrix_bytes", "Bytes of the concept matrices' live rows, all collections.");
        Gauge facts = factory.CreateGauge("assocdb_facts_stored", "Facts stored, all collections.");
        Gauge serving = factory.CreateGauge("assocdb_serving", "1 when the database is open, 0 while it recovers.");
        Gauge unavailable = factory.CreateGauge("assocdb_collections_unavailable",
            "Collections that could not be opened when the server started; calls naming them fail until they are dropped or repaired.");
        Registry.AddBeforeCollectCallback(() =>
        {
            serving.Set(database.IsOpen ? 1 : 0);
            if (database.IsOpen)
            {
                IReadOnlyList<CollectionInfo> collections = database.Database.ListCollections();
                concepts.Set(collections.Sum(c => c.ConceptCount));
                matrixBytes.Set(collections.Sum(MatrixBytes));
                facts.Set(collections.Sum(c => c.FactCount));
                unavailable.Set(collections.Count(c => c.State == CollectionState.Unavailable));
            }
        });
    }

    public CollectorRegistry Registry { get; }

    public Counter Requests { get; }

    public Gauge InFlight { get; }

    public Histogram Latency { get; }

    public Histogram SearchBatchQueries { get; }

    /// <summary>Bytes of a collection's live matrix rows in its storage precision.</summary>
    public static long MatrixBytes(CollectionInfo collection)
    {
        ArgumentNullException.ThrowIfNull(collection);
        int elementBytes = collection.Precision == StoragePrecision.Float32 ? 4 : 2;
        return collection.ConceptCount * collection.Dimension * elementBytes;
    }
}
