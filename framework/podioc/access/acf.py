"""Parser for the EPICS Access Security Configuration File (ACF) format.

Supported (the CALC-free subset of EPICS base's asLib)::

    # comment
    UAG(operators) { alice, bob }
    HAG(consoles)  { localhost, 10.0.0.7, opi01 }
    ASG(DEFAULT) {
        RULE(1, READ)
        RULE(1, WRITE, TRAPWRITE) {
            UAG(operators)
            HAG(consoles)
        }
    }

Names are bare words of ``[A-Za-z0-9_-+:.[]<>;]`` or double-quoted strings.
``INP<x>(...)`` and ``CALC(...)`` are rejected: podioc has no input links,
so a rule that depends on a calculation cannot be evaluated. Every error names
the file, the line and the reason (a :class:`~podioc.errors.ConfigError`).

Host names in HAGs are resolved to IP addresses when the file is loaded (see
:mod:`.hosts`), so host rules match the client's address as the server sees
it, never a host name a client claims.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..errors import ConfigError


class Access(enum.IntEnum):
    """Rights, ordered: a rule grants at most one of these."""

    NONE = 0
    READ = 1
    WRITE = 2  # implies READ, as in EPICS


@dataclass(frozen=True)
class Rule:
    """One ``RULE(level, access[, TRAPWRITE]) { UAG(..) HAG(..) }``."""

    level: int
    access: Access
    trapwrite: bool = False
    uags: tuple[str, ...] = ()
    hags: tuple[str, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class HostEntry:
    """A HAG member: the name as written and the addresses it resolved to."""

    name: str
    addresses: frozenset[str]
    line: int = 0


@dataclass
class ACF:
    """A parsed rules file. ``warnings`` holds non-fatal findings (file:line: text)."""

    source: str = "<rules>"
    uags: dict[str, frozenset[str]] = field(default_factory=dict)
    hags: dict[str, tuple[HostEntry, ...]] = field(default_factory=dict)
    asgs: dict[str, tuple[Rule, ...]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    _hag_sets: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    def hag_addresses(self, name: str) -> frozenset[str]:
        """Every address the HAG ``name`` matches."""
        found = self._hag_sets.get(name)
        if found is None:
            found = frozenset().union(*(e.addresses for e in self.hags.get(name, ())))
            self._hag_sets[name] = found
        return found

    def evaluate(self, asg: str, user: str | None, ip: str) -> tuple[Access, bool]:
        """(rights, trapwrite) of ``user`` at address ``ip`` on a PV of group ``asg``.

        As in EPICS: an undefined group falls back to DEFAULT, a group without
        rules grants nothing, and the best matching rule wins. A rule matches
        when the user is in one of its UAGs (or it names none) and the address is
        in one of its HAGs (or it names none). podioc PVs are level-0 fields
        (like VAL), so rules of level 0 and 1 both apply. ``user=None`` means
        "any user" (the best any user at that address could get).
        """
        rules = self.asgs.get(asg, self.asgs.get("DEFAULT", ()))
        best, trap = Access.NONE, False
        for rule in rules:
            if rule.uags and user is not None and not any(
                    user in self.uags[u] for u in rule.uags):
                continue
            if rule.hags and not any(ip in self.hag_addresses(h) for h in rule.hags):
                continue
            if rule.access > best:
                best = rule.access
            if rule.access is Access.WRITE and rule.trapwrite:
                trap = True
        return best, trap and best is Access.WRITE


# -- tokens ----------------------------------------------------------------
_TOKEN_RE = re.compile(r"""
    (?P<space>[ \t\r\f\v]+)
  | (?P<newline>\n)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<badstring>"[^\n]*)
  | (?P<punct>[(){},])
  | (?P<word>[A-Za-z0-9_\-+:.\[\]<>;]+)
  | (?P<other>.)
""", re.VERBOSE)

_INP_RE = re.compile(r"^INP[A-L]?$|^INP\d+$")


@dataclass(frozen=True)
class Token:
    """A lexical token: kind is 'word', 'string', a punctuation character or 'eof'."""

    kind: str
    text: str
    line: int


class ACFParser:
    """Recursive-descent parser; :func:`parse` is the entry point."""

    def __init__(self, text: str, source: str,
                 resolve: Callable[[str], frozenset[str]]) -> None:
        self.source = source
        self.resolve = resolve
        self.tokens = list(self._lex(text))
        self.pos = 0
        self.acf = ACF(source=source)
        self._hag_lines: dict[str, int] = {}

    # -- helpers -------------------------------------------------------------
    def error(self, line: int, reason: str, fix: str = "") -> ConfigError:
        return ConfigError(self.source, f"line {line}", reason, fix)

    def _lex(self, text: str) -> Iterator[Token]:
        line = 1
        for match in _TOKEN_RE.finditer(text):
            kind = match.lastgroup or "other"
            value = match.group()
            if kind == "newline":
                line += 1
            elif kind in ("space", "comment"):
                continue
            elif kind == "badstring":
                raise self.error(line, "unterminated quoted string",
                                 'close it with " on the same line')
            elif kind == "other":
                raise self.error(line, f"unexpected character {value!r}",
                                 "names may use letters, digits and _-+:.[]<>; or be quoted")
            elif kind == "punct":
                yield Token(value, value, line)
            elif kind == "string":
                yield Token("string", re.sub(r"\\(.)", r"\1", value[1:-1]), line)
            else:
                yield Token("word", value, line)
        yield Token("eof", "", line)

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def next(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind != "eof":
            self.pos += 1
        return tok

    def expect(self, kind: str, what: str) -> Token:
        tok = self.next()
        if tok.kind != kind:
            found = "end of file" if tok.kind == "eof" else repr(tok.text)
            raise self.error(tok.line, f"expected {what}, found {found}")
        return tok

    def name(self, what: str) -> Token:
        tok = self.next()
        if tok.kind not in ("word", "string") or not tok.text:
            found = "end of file" if tok.kind == "eof" else repr(tok.text)
            raise self.error(tok.line, f"expected {what}, found {found}")
        return tok

    def name_list(self, close: str, what: str) -> list[Token]:
        """``name {, name}`` up to the ``close`` punctuation (consumed)."""
        names = [self.name(what)]
        while True:
            tok = self.next()
            if tok.kind == close:
                return names
            if tok.kind != ",":
                found = "end of file" if tok.kind == "eof" else repr(tok.text)
                raise self.error(tok.line, f"expected ',' or '{close}', found {found}")
            names.append(self.name(what))

    def _unsupported(self, tok: Token) -> ConfigError:
        return self.error(tok.line, f"{tok.text} is not supported by podioc (rules that depend "
                          "on input links and calculations cannot be evaluated)",
                          "remove INP/CALC; grant access with UAG and HAG conditions only")

    # -- grammar -------------------------------------------------------------
    def parse(self) -> ACF:
        while (tok := self.next()).kind != "eof":
            keyword = tok.text.upper() if tok.kind == "word" else ""
            if keyword == "UAG":
                self.group(tok, "UAG")
            elif keyword == "HAG":
                self.group(tok, "HAG")
            elif keyword == "ASG":
                self.asg(tok)
            else:
                raise self.error(tok.line, f"expected UAG, HAG or ASG, found {tok.text!r}")
        return self.acf

    def group(self, head: Token, kind: str) -> None:
        self.expect("(", f"'(' after {kind}")
        name = self.name(f"{kind} name")
        self.expect(")", f"')' after the {kind} name")
        table: dict[str, object] = self.acf.uags if kind == "UAG" else self.acf.hags  # type: ignore[assignment]
        if name.text in table:
            raise self.error(name.line, f"{kind} {name.text!r} is defined twice")
        members: list[Token] = []
        if self.peek().kind == "{":
            self.next()
            if self.peek().kind == "}":
                self.next()
            else:
                members = self.name_list("}", f"{'user' if kind == 'UAG' else 'host'} name")
        if kind == "UAG":
            self.acf.uags[name.text] = frozenset(t.text for t in members)
            return
        entries = []
        for member in members:
            host = member.text.lower()  # host names compare case-blind, as in EPICS
            addresses = self.resolve(host)
            if not addresses:
                self.acf.warnings.append(
                    f"{self.source}: line {member.line}: host {member.text!r} in HAG "
                    f"{name.text!r} does not resolve to an address; it matches no client")
            entries.append(HostEntry(host, addresses, member.line))
        self.acf.hags[name.text] = tuple(entries)

    def asg(self, head: Token) -> None:
        self.expect("(", "'(' after ASG")
        name = self.name("ASG name")
        self.expect(")", "')' after the ASG name")
        if name.text in self.acf.asgs:
            raise self.error(name.line, f"ASG {name.text!r} is defined twice")
        rules: list[Rule] = []
        if self.peek().kind == "{":
            self.next()
            while (tok := self.next()).kind != "}":
                word = tok.text.upper() if tok.kind == "word" else ""
                if word == "RULE":
                    rules.append(self.rule(tok))
                elif _INP_RE.match(word) or word == "CALC":
                    raise self._unsupported(tok)
                elif tok.kind == "eof":
                    raise self.error(tok.line, f"ASG {name.text!r} is not closed",
                                     "add the missing '}'")
                else:
                    raise self.error(tok.line, f"expected RULE or '}}' in ASG {name.text!r}, "
                                     f"found {tok.text!r}")
        self.acf.asgs[name.text] = tuple(rules)

    def rule(self, head: Token) -> Rule:
        self.expect("(", "'(' after RULE")
        level_tok = self.name("access security level (0 or 1)")
        if level_tok.text not in ("0", "1"):
            raise self.error(level_tok.line, f"level {level_tok.text!r} must be 0 or 1")
        self.expect(",", "',' after the level")
        access_tok = self.name("NONE, READ or WRITE")
        try:
            access = Access[access_tok.text.upper()]
        except KeyError:
            raise self.error(access_tok.line, f"access {access_tok.text!r} must be NONE, "
                             "READ or WRITE") from None
        trapwrite = False
        tok = self.next()
        if tok.kind == ",":
            trap_tok = self.name("TRAPWRITE or NOTRAPWRITE")
            option = trap_tok.text.upper()
            if option not in ("TRAPWRITE", "NOTRAPWRITE"):
                raise self.error(trap_tok.line, f"{trap_tok.text!r} must be TRAPWRITE or "
                                 "NOTRAPWRITE")
            trapwrite = option == "TRAPWRITE"
            tok = self.next()
        if tok.kind != ")":
            raise self.error(tok.line, f"expected ')' to close RULE, found {tok.text!r}")
        uags: list[str] = []
        hags: list[str] = []
        if self.peek().kind == "{":
            self.next()
            while (tok := self.next()).kind != "}":
                word = tok.text.upper() if tok.kind == "word" else ""
                if word in ("UAG", "HAG"):
                    self.expect("(", f"'(' after {word}")
                    refs = self.name_list(")", f"{word} name")
                    table = self.acf.uags if word == "UAG" else self.acf.hags
                    for ref in refs:
                        if ref.text not in table:
                            raise self.error(ref.line, f"{word} {ref.text!r} is not defined",
                                             f"define {word}({ref.text}) {{...}} before "
                                             "the ASG that uses it")
                    (uags if word == "UAG" else hags).extend(r.text for r in refs)
                elif word == "CALC" or _INP_RE.match(word):
                    raise self._unsupported(tok)
                elif tok.kind == "eof":
                    raise self.error(tok.line, "RULE is not closed", "add the missing '}'")
                else:
                    raise self.error(tok.line, f"expected UAG(...) or HAG(...) in RULE, "
                                     f"found {tok.text!r}")
        return Rule(int(level_tok.text), access, trapwrite, tuple(uags), tuple(hags),
                    head.line)


def parse(text: str, source: str = "<rules>",
          resolve: Callable[[str], frozenset[str]] | None = None) -> ACF:
    """Parse ACF ``text``; ``resolve`` maps a host name to its addresses."""
    from .hosts import resolve_host

    return ACFParser(text, source, resolve or resolve_host).parse()
