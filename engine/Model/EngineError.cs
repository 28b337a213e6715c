namespace AssocDB.Engine.Model;

/// <summary>The kind of an expected, non-fault outcome that stops an operation.</summary>
public enum ErrorCode
{
    /// <summary>A named collection, concept, relation or fact does not exist.</summary>
    NotFound,

    /// <summary>The thing to create exists already.</summary>
    AlreadyExists,

    /// <summary>A request field is malformed or out of range; <see cref="EngineError.Field"/> names it.</summary>
    InvalidArgument,

    /// <summary>The request is well-formed but the current state forbids it.</summary>
    FailedPrecondition,

    /// <summary>A limit (capacity, work bound) would be exceeded.</summary>
    ResourceExhausted,
}

/// <summary>
/// Why an operation did not happen. Nothing was changed when an error is returned.
/// </summary>
/// <param name="Code">The kind of error.</param>
/// <param name="Field">The request field at fault, as a path (<c>facts[3].head</c>); empty when none.</param>
/// <param name="Message">A sentence for people.</param>
public sealed record EngineError(ErrorCode Code, string Field, string Message)
{
    /// <summary>Prefixes the field path, e.g. to say which item of a batch was bad.</summary>
    public EngineError At(string prefix) =>
        this with { Field = Field.Length == 0 ? prefix : Field.StartsWith('[') ? prefix + Field : $"{prefix}.{Field}" };

    /// <inheritdoc />

    public override string ToString() => Field.Length == 0 ? Message : $"{Field}: {Message}";

    internal static EngineError Invalid(string field, string message) => new(ErrorCode.InvalidArgument, field, message);

    internal static EngineError NotFound(string field, string message) => new(ErrorCode.NotFound, field, message);
}

/// <summary>A value or the error that prevented it.</summary>
public readonly struct Result<T>
{
    private readonly T? _value;

    private Result(T? value, EngineError? error)
    {
        _value = value;
        Error = error;
    }

    /// <summary>The error, or null on success.</summary>
    public EngineError? Error { get; }

    /// <summary>Whether the operation succeeded.</summary>
    public bool IsOk => Error is null;

    /// <summary>The value; throws if the operation failed (a caller bug, not an outcome).</summary>
    public T Value => IsOk ? _value! : throw new InvalidOperationException($"result holds an error: {Error}");

    /// <summary>A successful result.</summary>
    public static implicit operator Result<T>(T value) => new(value, null);

    /// <summary>A failed result.</summary>
    public static implicit operator Result<T>(EngineError error) => new(default, error);

    /// <inheritdoc />

    public override string ToString() => IsOk ? $"Ok({_value})" : $"Error({Error})";
}
