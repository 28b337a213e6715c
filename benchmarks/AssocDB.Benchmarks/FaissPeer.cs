using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace AssocDB.Benchmarks;

/// <summary>
/// FAISS IndexFlatIP on the same data, in a Debian python process (<c>benchmarks/faiss_peer.py</c>)
/// that times one search per command, so the kernel bench can alternate its own searches with
/// FAISS's: on a shared machine whose speed drifts over minutes, both sides of a ratio then see the
/// same phases.
/// </summary>
internal sealed class FaissPeer : IDisposable
{
    private readonly Process _process;
    private readonly string _temp;

    private FaissPeer(Process process, string temp, JsonElement hello)
    {
        _process = process;
        _temp = temp;
        Version = hello.GetProperty("faiss_version").GetString() ?? "?";
        Threads = hello.GetProperty("threads").GetInt32();
    }

    public string Version { get; }

    public int Threads { get; }

    /// <summary>Starts the peer on <paramref name="vectors"/> and waits until its index is built;
    /// null (with the reason printed) when Debian's python or faiss is missing.
    /// <paramref name="openMpWaitPolicy"/> is the peer's <c>OMP_WAIT_POLICY</c>. With libgomp's
    /// default (threads spin after each parallel region), FAISS's OpenMP threads spin while its
    /// OpenBLAS threads compute a batch, on the same two cores: a batch of 256 took 4.2–4.7 s that
    /// way and 1.4–2.0 s with <c>PASSIVE</c>, minutes apart. PASSIVE is FAISS at its best here, and
    /// its threads then leave the cores to the bench's own searches between commands.</summary>
    public static FaissPeer? Start(string script, float[] vectors, float[] queries, int d, int k, string openMpWaitPolicy)
    {
        string temp = Directory.CreateTempSubdirectory("assocdb-faiss-").FullName;
        string data = Path.Combine(temp, "w.f32");
        string query = Path.Combine(temp, "q.f32");
        WriteFloats(data, vectors);
        WriteFloats(query, queries);
        var info = new ProcessStartInfo("/usr/bin/python3", $"{script} --data {data} --queries {query} --dim {d} --k {k}")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            Environment = { ["OMP_WAIT_POLICY"] = openMpWaitPolicy },
        };
        try
        {
            Process process = Process.Start(info) ?? throw new InvalidOperationException("no process");
            string? hello = process.StandardOutput.ReadLine();
            if (hello is null)
            {
                process.WaitForExit();
                Console.WriteLine($"faiss_peer.py failed with exit code {process.ExitCode} (apt-get install -y python3-faiss libopenblas0-pthread)");
                process.Dispose();
                Directory.Delete(temp, recursive: true);
                return null;
            }

            return new FaissPeer(process, temp, JsonDocument.Parse(hello).RootElement.Clone());
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Console.WriteLine($"faiss_peer.py skipped: {e.Message} (apt-get install -y python3-faiss libopenblas0-pthread)");
            Directory.Delete(temp, recursive: true);
            return null;
        }
    }

    /// <summary>Milliseconds FAISS takes to search query <paramref name="query"/> alone.</summary>
    public double Single(int query) => Ask($"single {query}");

    /// <summary>Median milliseconds of <paramref name="count"/> single-query searches run back to back.</summary>
    public double SinglesBackToBack(int count) => Ask($"singles {count}");

    /// <summary>Milliseconds FAISS takes to search every query at once.</summary>
    public double Batch() => Ask("batch");

    /// <summary>The last batch's top-k row ids per query.</summary>
    public int[][] BatchIds()
    {
        _process.StandardInput.WriteLine("ids");
        using JsonDocument ids = JsonDocument.Parse(ReadAnswer());
        return [.. ids.RootElement.EnumerateArray().Select(row => row.EnumerateArray().Select(e => e.GetInt32()).ToArray())];
    }

    public void Dispose()
    {
        _process.StandardInput.Close();
        _process.WaitForExit();
        _process.Dispose();
        Directory.Delete(_temp, recursive: true);
    }

    private double Ask(string command)
    {
        _process.StandardInput.WriteLine(command);
        return double.Parse(ReadAnswer(), CultureInfo.InvariantCulture);
    }

    private string ReadAnswer() => _process.StandardOutput.ReadLine() ?? throw new InvalidOperationException("faiss_peer.py stopped answering");

    private static void WriteFloats(string path, float[] values)
    {
        using var stream = File.Create(path);
        stream.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
    }
}
