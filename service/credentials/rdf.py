"""JSON-LD documents as RDF datasets, in safe mode, and their RDFC-1.0 canonical N-Quads.

Safe mode, as JSON-LD processors define it (jsonld.js ``safe: true``): a property no context
defines, a relative or invalid IRI, a type no context defines, are errors, never a made-up
IRI or a silently dropped value. pyld has no such mode, so ``expanded`` expands without a base
IRI (relative IRIs stay visible) and then checks every IRI of the expansion and that no value
was lost on the way.

Speed by design: a credential's RDF depends on its *shape* (keys, list lengths, types,
contexts, which values are IRIs of which scheme), not on its literal values. ``quads``
expands a shape once, with sentinel values, records where each value lands, and from then on
fills that template; it never runs the JSON-LD algorithms for a shape it has seen. A value
that JSON-LD would transform (a type, a vocabulary term) is part of the shape, not a slot.
The canonical form comes from pyoxigraph's RDFC-1.0 (Rust). ``reference_canonical`` is the
plain pyld path, which the verifier falls back on and the tests compare with.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import pyoxigraph as ox
from cachetools import LRUCache
from pyld import jsonld

from service.credentials.documents import load_document

# An absolute IRI (RFC 3987, as far as a processor can tell without a full parser): a scheme,
# a colon, and none of the characters an IRI may not hold.
ABSOLUTE_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`\x00-\x1f]*")
LANGUAGE_TAG = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")
XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
EXPAND = {"documentLoader": load_document, "base": None}
MAX_SHAPES = 512


class UnsafeDocument(ValueError):
    """Not valid JSON-LD under the shipped contexts in safe mode: nothing is signed or
    accepted that a standard verifier would read differently."""


def _reason(exc: jsonld.JsonLdError) -> str:
    cause = exc.details.get("cause") if isinstance(exc.details, dict) else None
    while isinstance(cause, jsonld.JsonLdError):
        exc = cause
        cause = exc.details.get("cause") if isinstance(exc.details, dict) else None
    return str(exc.args[0]) if exc.args else exc.type


def expanded(document: Mapping[str, Any]) -> list[Any]:
    """The JSON-LD expansion, refused where a safe-mode processor would refuse it."""
    try:
        result: list[Any] = jsonld.expand(dict(document), dict(EXPAND))
    except jsonld.JsonLdError as exc:
        raise UnsafeDocument(_reason(exc)) from exc
    problem = next(_unsafe(result), None)
    if problem is not None:
        raise UnsafeDocument(problem)
    if _count_json(document) != _count_expanded(result):
        lost = _names(document) - _expanded_names(document, result)
        names = ", ".join(sorted(lost)[:5]) or "(unnamed values)"
        raise UnsafeDocument(f"terms no context defines: {names}")
    return result


def _iri(value: Any) -> bool:
    return isinstance(value, str) and ABSOLUTE_IRI.fullmatch(value) is not None


def _unsafe(value: Any) -> Iterator[str]:
    """Every IRI an expanded document holds must be absolute: node ids (or blank node ids),
    types, property names and datatypes; languages must be tags; no base direction."""
    if isinstance(value, list):
        for item in value:
            yield from _unsafe(item)
        return
    if not isinstance(value, dict):
        return
    node_id = value.get("@id")
    if node_id is not None and not (node_id.startswith("_:") or _iri(node_id)):
        yield "relative or invalid @id reference"
    types = value.get("@type", [])
    for kind in types if isinstance(types, list) else [types]:
        if not _iri(kind) or kind.startswith("_:"):
            yield "relative or undefined @type reference"
    if "@language" in value and not LANGUAGE_TAG.fullmatch(str(value["@language"])):
        yield "invalid @language value"
    if "@direction" in value:
        yield "@direction has no RDF form every verifier agrees on"
    for key, item in value.items():
        if not key.startswith("@") and (not _iri(key) or key.startswith("_:")):
            yield f"invalid property {key!r}"
        if key not in ("@id", "@type", "@value", "@language"):
            yield from _unsafe(item)


def _count_json(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_count_json(v) for k, v in value.items() if k != "@context")
    if isinstance(value, list):
        return sum(_count_json(v) for v in value)
    return 0 if value is None else 1


def _count_expanded(value: Any) -> int:
    if isinstance(value, list):
        return sum(_count_expanded(v) for v in value)
    if not isinstance(value, dict):
        return 1
    if "@value" in value:
        return 1
    count = len(value.get("@type", [])) + (1 if "@id" in value else 0)
    return count + sum(_count_expanded(v) for k, v in value.items() if k not in ("@id", "@type"))


def _names(value: Any) -> set[str]:
    if isinstance(value, dict):
        own = {k for k in value if k != "@context"}
        return own.union(*(_names(v) for k, v in value.items() if k != "@context"))
    if isinstance(value, list):
        return set().union(*(_names(v) for v in value))
    return set()


def _expanded_names(document: Mapping[str, Any], result: list[Any]) -> set[str]:
    """The property names that survive: compacting the expansion with the document's own
    context gives them back under the names the document used."""
    options = {"documentLoader": load_document}
    compacted = jsonld.compact(result, {"@context": document.get("@context")}, options)
    return _names(compacted)


def dataset(document: Mapping[str, Any]) -> list[ox.Quad]:
    """The document's RDF, by the JSON-LD algorithms themselves (pyld), in safe mode. Its
    blank nodes are fresh: datasets of different documents never share one."""
    try:
        graphs = jsonld.to_rdf(expanded(document), {"documentLoader": load_document})
    except jsonld.JsonLdError as exc:
        raise UnsafeDocument(_reason(exc)) from exc
    blanks: dict[str, ox.BlankNode] = {}

    def term(node: Mapping[str, Any]) -> Any:
        kind, value = node["type"], node["value"]
        if kind == "IRI":
            return ox.NamedNode(value)
        if kind == "blank node":
            return blanks.setdefault(value, ox.BlankNode())
        if node.get("language"):
            return ox.Literal(value, language=node["language"])
        return ox.Literal(value, datatype=ox.NamedNode(node.get("datatype") or XSD_STRING))

    quads = []
    for name, triples in graphs.items():
        graph = (
            ox.DefaultGraph() if name == "@default" else term({"type": "blank node", "value": name})
        )
        for triple in triples:
            quads.append(
                ox.Quad(
                    term(triple["subject"]),
                    term(triple["predicate"]),
                    term(triple["object"]),
                    graph,
                )
            )
    return quads


def canonical(quads: Iterable[ox.Quad]) -> str:
    """RDFC-1.0 canonical N-Quads: canonical blank node labels, one sorted line per quad."""
    data = ox.Dataset(quads)
    data.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
    return "".join(sorted(f"{quad} .\n" for quad in data))


def reference_canonical(document: Mapping[str, Any]) -> str:
    """The same by pyld alone (URDNA2015, the algorithm RDFC-1.0 standardised), as most
    verifiers compute it; slow, and kept for checking what others send."""
    options = {"algorithm": "URDNA2015", "format": "application/n-quads"}
    try:
        result: str = jsonld.normalize(expanded(document), {**options, **EXPAND})
    except jsonld.JsonLdError as exc:
        raise UnsafeDocument(_reason(exc)) from exc
    return result


# --- Compiled shapes -------------------------------------------------------------------------

BOUND_KEYS = frozenset({"@context", "type", "@type"})  # they choose contexts: always shape
_ESCAPES = str.maketrans({'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r"})
_fills = itertools.count()


def _iri_class(value: str) -> tuple[str, bool] | None:
    """What JSON-LD looks at when it expands a string as an IRI: the part before the first
    colon (a prefix term could stand for it) and whether '//' follows (then it never does)."""
    if ABSOLUTE_IRI.fullmatch(value) is None:
        return None
    prefix, _, rest = value.partition(":")
    return prefix, rest.startswith("//")


def _sentinel(slot: int, value: str) -> str:
    """A stand-in that JSON-LD treats as it treats ``value``: an IRI of the same class, for
    an IRI; for any other text an IRI too, so that where JSON-LD would turn text into an IRI
    the stand-in shows up as one and the slot is taken into the shape."""
    kind = _iri_class(value)
    if kind is None:
        return f"urn:x-sentinel:{slot}"
    prefix, authority = kind
    return f"{prefix}://sentinel.invalid/{slot}" if authority else f"{prefix}:x-sentinel-{slot}"


def _shape(value: Any, values: list[str], out: list[Any]) -> None:
    """The shape of a document into ``out`` (keys, list lengths, the values of
    ``BOUND_KEYS``, numbers and booleans, and each string's IRI class), its strings into
    ``values``, in one fixed order."""
    if isinstance(value, dict):
        for key in sorted(value):
            out.append(key)
            if key in BOUND_KEYS:
                out.append(repr(value[key]))
            else:
                _shape(value[key], values, out)
        out.append(None)
    elif isinstance(value, list):
        out.append(len(value))
        for item in value:
            _shape(item, values, out)
    elif isinstance(value, str):
        values.append(value)
        out.append(_iri_class(value))
    else:
        out.append(repr(value))  # numbers, booleans, null: their RDF depends on them


def _stand_ins(value: Any, bound: frozenset[int], values: list[str]) -> Any:
    """The document with every string outside ``BOUND_KEYS`` and ``bound`` a stand-in, in
    ``_shape``'s order."""
    if isinstance(value, dict):
        return {
            key: value[key] if key in BOUND_KEYS else _stand_ins(value[key], bound, values)
            for key in sorted(value)
        }
    if isinstance(value, list):
        return [_stand_ins(item, bound, values) for item in value]
    if isinstance(value, str):
        slot = len(values)
        values.append(value)
        return value if slot in bound else _sentinel(slot, value)
    return value


# A template is N-Quads text in pieces: fixed text, or a slot's value as an IRI (IRI, n) or a
# literal's lexical form (LITERAL, n), or a blank node (BLANK, n) made fresh at each fill, or
# the graph (GRAPH): nothing for the default graph, or the one the filler names.
IRI, LITERAL, BLANK, GRAPH = range(4)
Piece = str | tuple[int, int]


@dataclass(frozen=True)
class Template:
    pieces: tuple[Piece, ...]

    def fill(self, values: Sequence[str], graph: str = "") -> str:
        """N-Quads of the document with these values; fresh blank nodes at every fill, so
        fills never share one; default-graph quads go into ``graph`` if one is named."""
        prefix = f"_:f{next(_fills)}b"
        into = f" {graph}" if graph else ""
        out = []
        for piece in self.pieces:
            if isinstance(piece, str):
                out.append(piece)
                continue
            kind, n = piece
            if kind == IRI:
                out.append(f"<{values[n]}>")
            elif kind == LITERAL:
                out.append(f'"{values[n].translate(_ESCAPES)}"')
            elif kind == BLANK:
                out.append(f"{prefix}{n}")
            else:
                out.append(into)
        return "".join(out)


def _template(
    found: Iterable[ox.Quad], sentinels: Mapping[str, tuple[int, bool]]
) -> tuple[Template, set[int]]:
    """A template of these quads, taking a slot's value where its stand-in landed unchanged:
    as a literal for any value, as an IRI only for a value that is an IRI of the stand-in's
    class. Returns the slots used."""
    pieces: list[Piece] = []
    blanks: dict[Any, int] = {}
    used: set[int] = set()

    def term(node: Any) -> None:
        if isinstance(node, ox.BlankNode):
            pieces.append((BLANK, blanks.setdefault(node, len(blanks))))
            return
        found = sentinels.get(node.value) if isinstance(node, ox.NamedNode | ox.Literal) else None
        if found is not None and (isinstance(node, ox.Literal) or found[1]):
            slot = found[0]
            used.add(slot)
            if isinstance(node, ox.NamedNode):
                pieces.append((IRI, slot))
                return
            pieces.append((LITERAL, slot))
            if node.language:
                pieces.append(f"@{node.language}")
            elif node.datatype.value != XSD_STRING:
                pieces.append(f"^^<{node.datatype.value}>")
            return
        pieces.append(str(node))

    for quad in found:
        term(quad.subject)
        pieces.append(" ")
        term(quad.predicate)
        pieces.append(" ")
        term(quad.object)
        if isinstance(quad.graph_name, ox.DefaultGraph):
            pieces.append((GRAPH, 0))
        else:
            pieces.append(" ")
            term(quad.graph_name)
        pieces.append(" .\n")
    merged: list[Piece] = []
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        else:
            merged.append(piece)
    return Template(tuple(merged)), used


@dataclass
class _Shape:
    bound: frozenset[int]  # slots whose values JSON-LD transforms: part of the shape
    templates: dict[tuple[str, ...], Template]


_shapes: LRUCache[tuple[Any, ...], _Shape] = LRUCache(maxsize=MAX_SHAPES)


def _compile(document: Mapping[str, Any], bound: frozenset[int]) -> tuple[Template, set[int]]:
    """The template of the document's shape, and the slots whose values JSON-LD did not carry
    over as they were (they must be part of the shape)."""
    values: list[str] = []
    stand_ins = _stand_ins(document, bound, values)
    sentinels = {
        _sentinel(slot, value): (slot, _iri_class(value) is not None)
        for slot, value in enumerate(values)
        if slot not in bound
    }
    try:
        found = dataset(stand_ins)
    except UnsafeDocument:
        # Some stand-in made it unsafe where the value itself may not be (text JSON-LD turns
        # into a term's IRI): the document itself says; if it is safe, all of it is shape.
        dataset(document)
        return Template(()), set(range(len(values))) - bound
    template, used = _template(found, sentinels)
    return template, {slot for slot, _ in sentinels.values()} - used


def _compiled(document: Mapping[str, Any]) -> tuple[Template, list[str]] | None:
    """The template of the document's shape and the values to fill it with; None when a
    value of this document changes how the rest expands (then only JSON-LD itself can say)."""
    values: list[str] = []
    shape: list[Any] = []
    _shape(document, values, shape)
    key = tuple(shape)
    known = _shapes.get(key)
    if known is None:
        template, transformed = _compile(document, frozenset())
        known = _Shape(frozenset(transformed), {} if transformed else {(): template})
        _shapes[key] = known
    bound_values = tuple(values[slot] for slot in sorted(known.bound))
    cached = known.templates.get(bound_values)
    if cached is not None:
        return cached, values
    template, transformed = _compile(document, known.bound)
    if transformed:
        return None
    if len(known.templates) < MAX_SHAPES:
        known.templates[bound_values] = template
    return template, values


def _as_text(found: Iterable[ox.Quad]) -> str:
    return "".join(f"{quad} .\n" for quad in found)


def nquads(document: Mapping[str, Any], graph: str = "") -> str:
    """The document's RDF as N-Quads, as ``dataset`` gives it, from its shape's template."""
    compiled = _compiled(document)
    if compiled is None:
        return _template(dataset(document), {})[0].fill((), graph)
    template, values = compiled
    return template.fill(values, graph)


def canonical_nquads(text: str) -> str:
    """RDFC-1.0 canonical N-Quads of N-Quads text."""
    return canonical(ox.parse(text, ox.RdfFormat.N_QUADS))


# --- Credentials inside a credential ------------------------------------------------------

# A ClrCredential holds whole credentials. Their RDF is their own RDF, linked from the holder:
# merged into the outer graph where the context links the credential as a node (CLR 2.0
# does), or moved into a graph of its own where it is a graph container (VC 2.0's
# ``verifiableCredential`` is). Composing those parts saves expanding hundreds of embedded
# contexts again; ``_link`` proves the composition on a probe for each outer shape before it
# is trusted, and otherwise the document goes through plain JSON-LD.
EMBEDDED_AT = ("credentialSubject", "verifiableCredential")
PROBE: dict[str, Any] = {
    "@context": ["https://www.w3.org/ns/credentials/v2"],
    "id": "urn:x-probe:credential",
    "type": ["VerifiableCredential"],
    "issuer": "did:x-probe:issuer",
    "validFrom": "2020-01-01T00:00:00Z",
    "credentialSubject": {"id": "did:x-probe:subject"},
    "proof": [
        {
            "type": "DataIntegrityProof",
            "cryptosuite": "eddsa-rdfc-2022",
            "created": "2020-01-01T00:00:00Z",
            "verificationMethod": "did:x-probe:issuer#key",
            "proofPurpose": "assertionMethod",
            "proofValue": "z1111",
        }
    ],
}


@dataclass(frozen=True)
class _Link:
    predicate: str
    in_graph: bool  # each credential in a graph of its own (a graph container)


_links: LRUCache[tuple[Any, ...], _Link | None] = LRUCache(maxsize=MAX_SHAPES)


def _embedding(document: Mapping[str, Any]) -> tuple[dict[str, Any], str, list[Any]] | None:
    """(the document without its embedded credentials, their holder's id, the credentials),
    when the holder and every credential have an IRI id."""
    holder = document.get(EMBEDDED_AT[0])
    if not isinstance(holder, dict):
        return None
    embedded, holder_id = holder.get(EMBEDDED_AT[1]), holder.get("id")
    if not isinstance(embedded, list) or not embedded or not isinstance(holder_id, str):
        return None
    if not _iri(holder_id) or not all(
        isinstance(item, dict) and _iri(item.get("id")) for item in embedded
    ):
        return None
    skeleton = {**document, EMBEDDED_AT[0]: {**holder, EMBEDDED_AT[1]: []}}
    return skeleton, holder_id, embedded


def _compose(
    base: str, holder: str, link: _Link, parts: Iterable[tuple[str, Callable[[str], str]]]
) -> str:
    """``base`` and each part (its credential id, and its N-Quads into a graph) linked."""
    out = [base]
    for credential_id, part in parts:
        if link.in_graph:
            graph = f"_:g{next(_fills)}"
            out.append(f"<{holder}> {link.predicate} {graph} .\n{part(graph)}")
        else:
            out.append(f"<{holder}> {link.predicate} <{credential_id}> .\n{part('')}")
    return "".join(out)


def _link(skeleton: Mapping[str, Any], holder_id: str) -> _Link | None:
    """How the holder links an embedded credential, if composing gives exactly what JSON-LD
    gives for this outer shape (checked once per shape, on the probe)."""
    values: list[str] = []
    shape: list[Any] = []
    _shape(skeleton, values, shape)
    key = tuple(shape)
    if key in _links:
        return _links[key]
    holder = ox.NamedNode(holder_id)
    probed = {**skeleton, EMBEDDED_AT[0]: {**skeleton[EMBEDDED_AT[0]], EMBEDDED_AT[1]: [PROBE]}}
    whole = dataset(probed)
    graphs = {quad.graph_name for quad in whole}
    found = {
        _Link(str(quad.predicate), quad.object in graphs)
        for quad in whole
        if quad.subject == holder
        and isinstance(quad.graph_name, ox.DefaultGraph)
        and (quad.object == ox.NamedNode(PROBE["id"]) or quad.object in graphs)
    }
    link = found.pop() if len(found) == 1 else None
    if link is not None:
        probe = _template(dataset(PROBE), {})[0]
        composed = _compose(
            _as_text(dataset(skeleton)),
            holder_id,
            link,
            [(PROBE["id"], lambda g: probe.fill((), g))],
        )
        if canonical_nquads(composed) != canonical(whole):
            link = None
    _links[key] = link
    return link


def credential_nquads(document: Mapping[str, Any]) -> str:
    """``nquads``, composing the RDF of embedded credentials from their own compiled shapes."""
    found = _embedding(document)
    if found is not None:
        skeleton, holder_id, embedded = found
        link = _link(skeleton, holder_id)
        if link is not None:
            parts = [(item["id"], partial(nquads, item)) for item in embedded]
            return _compose(nquads(skeleton), holder_id, link, parts)
    return nquads(document)
