"""An independent client for the AssocDB v1 API: Python stubs generated from the proto at run time.

Needs Debian's python3-grpcio, python3-protobuf, protobuf-compiler and protobuf-compiler-grpc.

Usage: independent_client.py PROTO_ROOT HOST:PORT [--api-key KEY] [--checks family,search]

Runs the family example (inverse and composition answers with proofs) and a vector search end to
end, and exits non-zero with a message on the first mismatch.
"""
import argparse
import glob
import importlib
import os
import shutil
import subprocess
import sys
import tempfile

import grpc


def generate(proto_root, out_dir):
    # Debian 12's python3-grpc-tools bundles protoc 3.5, which predates proto3 `optional`; its
    # protobuf-compiler (3.21) and the grpc_python_plugin of protobuf-compiler-grpc generate code
    # that matches the installed python3-protobuf runtime.
    # Every file of the contract, those the checks do not call included: each must compile for
    # another language too.
    files = sorted(os.path.relpath(path, proto_root) for path in glob.glob(os.path.join(proto_root, "assocdb", "v1", "*.proto")))
    if not files:
        sys.exit("no .proto files under %s" % proto_root)
    subprocess.run(["protoc", "-I" + proto_root, "--python_out=" + out_dir, "--grpc_python_out=" + out_dir,
                    "--plugin=protoc-gen-grpc_python=" + shutil.which("grpc_python_plugin")] + files, check=True)
    sys.path.insert(0, out_dir)
    for path in files:
        module = path[:-len(".proto")].replace("/", ".")
        importlib.import_module(module + "_pb2")
        importlib.import_module(module + "_pb2_grpc")


def expect(actual, expected, what):
    if actual != expected:
        sys.exit("%s: expected %r, got %r" % (what, expected, actual))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("proto_root")
    parser.add_argument("address")
    parser.add_argument("--api-key")
    parser.add_argument("--checks", default="family,search", help="comma-separated: family, search")
    options = parser.parse_args()
    checks = options.checks.split(",")
    unknown = sorted(set(checks) - {"family", "search"})
    if unknown:
        parser.error("unknown checks: %s" % ", ".join(unknown))
    metadata = (("authorization", "Bearer " + options.api_key),) if options.api_key else ()
    with tempfile.TemporaryDirectory() as out_dir:
        generate(options.proto_root, out_dir)
        from assocdb.v1 import collections_pb2_grpc, concepts_pb2_grpc, facts_pb2_grpc, queries_pb2_grpc
        from assocdb.v1 import relations_pb2_grpc

        channel = grpc.insecure_channel(options.address)
        collections = collections_pb2_grpc.CollectionServiceStub(channel)
        relations = relations_pb2_grpc.RelationServiceStub(channel)
        facts = facts_pb2_grpc.FactServiceStub(channel)
        concepts = concepts_pb2_grpc.ConceptServiceStub(channel)
        queries = queries_pb2_grpc.QueryServiceStub(channel)

        if "family" in checks:
            family(collections, relations, facts, queries, metadata)
        if "search" in checks:
            search(collections, concepts, queries, metadata)
        print("independent client: all checks passed")


def family(collections, relations, facts, queries, metadata):
    from assocdb.v1 import collections_pb2, common_pb2, facts_pb2, queries_pb2, relations_pb2
    name = "python-family"
    collections.CreateCollection(collections_pb2.CreateCollectionRequest(name=name, dimension=4), metadata=metadata)
    relations.DefineRelation(relations_pb2.DefineRelationRequest(
        collection=name, name="mother_of", inverse_of="child_of"), metadata=metadata)
    relations.DefineRelation(relations_pb2.DefineRelationRequest(
        collection=name, name="grandmother_of", inverse_of="grandchild_of",
        compositions=relations_pb2.CompositionList(rules=[relations_pb2.Composition(first="mother_of", second="mother_of")])),
        metadata=metadata)
    facts.AddFacts(facts_pb2.AddFactsRequest(collection=name, facts=[
        facts_pb2.FactInput(head="A", relation="mother_of", tail="B"),
        facts_pb2.FactInput(head="B", relation="mother_of", tail="C")]), metadata=metadata)

    # Only the two mother_of facts are stored, so every answer asked below is derived, with a proof.
    def related(concept, relation):
        answers = queries.Related(queries_pb2.RelatedRequest(
            collection=name, concept=concept, relation=relation), metadata=metadata).answers
        for answer in answers:
            expect(answer.kind, common_pb2.ANSWER_KIND_DERIVED, "kind of related(%s, %s) answer %s" % (concept, relation, answer.concept))
            if not answer.proof.facts:
                sys.exit("derived answer %s without a proof" % answer.concept)
        return sorted(a.concept for a in answers)

    expect(related("C", "child_of"), ["B"], "related(C, child_of)")
    expect(related("A", "grandmother_of"), ["C"], "related(A, grandmother_of)")
    expect(related("C", "grandchild_of"), ["A"], "related(C, grandchild_of)")
    expect(related("B", "child_of"), ["A"], "related(B, child_of)")
    facts.AddFacts(facts_pb2.AddFactsRequest(collection=name, facts=[
        facts_pb2.FactInput(head="B", relation="mother_of", tail="D")]), metadata=metadata)
    expect(related("A", "grandmother_of"), ["C", "D"], "related(A, grandmother_of) after B mother_of D")

    try:
        queries.Related(queries_pb2.RelatedRequest(collection=name, concept="nobody", relation="child_of"), metadata=metadata)
        sys.exit("unknown concept was answered")
    except grpc.RpcError as error:
        expect(error.code(), grpc.StatusCode.NOT_FOUND, "status of an unknown concept")



def search(collections, concepts, queries, metadata):
    from assocdb.v1 import collections_pb2, common_pb2, concepts_pb2, queries_pb2
    space = "python-vectors"
    collections.CreateCollection(collections_pb2.CreateCollectionRequest(name=space, dimension=4), metadata=metadata)
    vectors = {"x": [1, 0, 0, 0], "y": [0.9, 0.1, 0, 0], "z": [0, 0, 1, 0]}
    concepts.UpsertConcepts(concepts_pb2.UpsertConceptsRequest(collection=space, concepts=[
        concepts_pb2.ConceptInput(name=n, vector=common_pb2.Vector(values=v)) for n, v in vectors.items()]),
        metadata=metadata)
    response = queries.Search(queries_pb2.SearchRequest(collection=space, k=2, queries=[
        queries_pb2.SearchQuery(vector=common_pb2.Vector(values=[1, 0.05, 0, 0])),
        queries_pb2.SearchQuery(concept="z")]), metadata=metadata)
    expect([h.concept for h in response.results[0].hits], ["x", "y"], "search by vector")
    expect(len(response.results[1].hits), 2, "search by concept")
    if response.results[1].hits[0].concept == "z":
        sys.exit("search by concept returned the query concept")


if __name__ == "__main__":
    main()
