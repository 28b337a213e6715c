namespace AssocDB.Engine.Learning;

/// <summary>
/// A fact as dense ids: <c>Head Relation Tail</c>. Concept ids index rows of the concept matrix
/// (<c>0..n-1</c>); relation ids are <c>0..m-1</c>. The learning components work on these alone,
/// so they do not depend on how names are stored.
/// </summary>
/// <param name="Head">Concept id of the subject.</param>
/// <param name="Relation">Relation id.</param>
/// <param name="Tail">Concept id of the object.</param>
public readonly record struct Triple(int Head, int Relation, int Tail);
