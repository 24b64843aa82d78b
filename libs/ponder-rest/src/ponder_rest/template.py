"""google.api.http path templates: parse them, and match request paths against them.

Grammar (google/api/http.proto):

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    FieldPath = IDENT { "." IDENT } ;
    Verb     = ":" LITERAL ;

Matching works on the raw (still percent-encoded) path. A variable of one segment is fully
percent-decoded, and one whose capture holds an encoded slash (`%2F`) does not match (as in
grpc-gateway, which unescapes before matching: `workflows/a%2Fb` is two segments, so 404); a
multi-segment variable (`**` or several segments) is decoded except for `%2F`, as the spec
asks. `**` matches one or more segments and must be the last segment of the template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote


class TemplateError(ValueError):
    """A path template that does not follow the grammar (raised at start-up)."""


_LITERAL = re.compile(r"[A-Za-z0-9\-._~%!$&'()+,;@]+")
_FIELD_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_SLASH_KEPT = re.compile(r"%2[Ff]")
# A variable in a template's source: its field path, and its segments if it names them.
VARIABLE = re.compile(r"\{([^}=]+)(?:=([^}]*))?\}")


@dataclass(frozen=True, slots=True)
class Variable:
    """A `{field.path=segments}` capture."""

    field_path: str
    pattern: str  # the segments it captures, e.g. "workflows/*" (default "*")
    multi_segment: bool

    def decode(self, raw: str) -> str:
        """The bound value of a raw (percent-encoded) capture."""
        if not self.multi_segment:
            return unquote(raw)
        # Decode everything but %2F, which stays encoded so it is not mistaken for a separator.
        parts = _SLASH_KEPT.split(raw)
        slashes = _SLASH_KEPT.findall(raw)
        out = [unquote(parts[0])]
        for slash, part in zip(slashes, parts[1:], strict=True):
            out.extend((slash, unquote(part)))
        return "".join(out)


@dataclass(frozen=True, slots=True)
class PathTemplate:
    """A parsed template with its matcher."""

    source: str
    variables: tuple[Variable, ...]
    verb: str
    literal_count: int
    has_double_wildcard: bool
    regex: re.Pattern[str]

    def match(self, raw_path: str) -> dict[str, str] | None:
        """Field path -> decoded value when `raw_path` matches, else None."""
        found = self.regex.fullmatch(raw_path)
        if found is None:
            return None
        groups = found.groups()
        if any(
            not v.multi_segment and _SLASH_KEPT.search(g)
            for v, g in zip(self.variables, groups, strict=True)
        ):
            return None  # an escaped slash is a slash: it cannot sit inside one segment
        return {v.field_path: v.decode(g) for v, g in zip(self.variables, groups, strict=True)}

    @property
    def openapi_path(self) -> str:
        """The template as an OpenAPI path: `{name=workflows/*}` becomes `{name}`."""
        return VARIABLE.sub(r"{\1}", self.source)


class _Parser:
    """Recursive-descent parser over one template string."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.pos = 0
        self.variables: list[Variable] = []
        self.literals = 0
        self.double = False

    def fail(self, problem: str) -> TemplateError:
        return TemplateError(
            f"invalid path template {self.source!r}: {problem} at position {self.pos}"
        )

    def peek(self) -> str:
        return self.source[self.pos] if self.pos < len(self.source) else ""

    def parse(self) -> PathTemplate:
        if not self.source.startswith("/"):
            raise self.fail("a template must start with '/'")
        self.pos = 1
        pattern = self.segments(in_variable=False)
        verb = ""
        if self.peek() == ":":
            self.pos += 1
            verb = self.literal()
            pattern += ":" + re.escape(verb)
        if self.pos != len(self.source):
            raise self.fail(f"unexpected {self.peek()!r}")
        seen: set[str] = set()
        for variable in self.variables:
            if variable.field_path in seen:
                raise self.fail(f"field {variable.field_path!r} is bound twice")
            seen.add(variable.field_path)
        return PathTemplate(
            source=self.source,
            variables=tuple(self.variables),
            verb=verb,
            literal_count=self.literals,
            has_double_wildcard=self.double,
            regex=re.compile("/" + pattern),
        )

    def segments(self, *, in_variable: bool) -> str:
        parts = [self.segment(in_variable=in_variable)]
        while self.peek() == "/":
            self.pos += 1
            parts.append(self.segment(in_variable=in_variable))
        return "/".join(parts)

    def segment(self, *, in_variable: bool) -> str:
        if self.double:
            raise self.fail("'**' must be the last segment")
        if self.source.startswith("**", self.pos):
            self.pos += 2
            self.double = True
            return _DOUBLE
        if self.peek() == "*":
            self.pos += 1
            return _SINGLE
        if self.peek() == "{":
            if in_variable:
                raise self.fail("variables cannot be nested")
            return self.variable()
        self.literals += 1
        return re.escape(self.literal())

    def literal(self) -> str:
        found = _LITERAL.match(self.source, self.pos)
        if found is None:
            raise self.fail("expected a literal segment, '*', '**' or a {variable}")
        self.pos = found.end()
        return found.group()

    def variable(self) -> str:
        self.pos += 1  # "{"
        found = _FIELD_PATH.match(self.source, self.pos)
        if found is None:
            raise self.fail("expected a field path inside '{}'")
        self.pos = found.end()
        start = self.pos
        sub = _SINGLE
        if self.peek() == "=":
            self.pos += 1
            start = self.pos
            sub = self.segments(in_variable=True)
        if self.peek() != "}":
            raise self.fail("expected '}'")
        text = self.source[start : self.pos] if sub is not _SINGLE else "*"
        self.pos += 1
        multi = "/" in text or "**" in text
        self.variables.append(Variable(found.group(), text, multi))
        return f"({sub})"


_SINGLE = "[^/]+"
_DOUBLE = "[^/]+(?:/[^/]+)*"


def parse_template(source: str) -> PathTemplate:
    """Parse `source`; raises TemplateError saying what is wrong and where."""
    return _Parser(source).parse()
