"""How jobs are chosen and labelled (hodei_stream/stream/selection.py): the name filters,
what the server may filter itself, and labels that stay once given."""

from __future__ import annotations

from hodei_stream.stream.options import parse_options
from hodei_stream.stream.selection import Found, Labels, Selector

A = "aaaaaaaa-0000-4000-8000-000000000001"
B = "bbbbbbbb-0000-4000-8000-000000000002"
C = "cccccccc-0000-4000-8000-000000000003"


def test_names_match_any_pattern_and_only_plain_text_goes_to_the_server() -> None:
    several = Selector.of(parse_options(["--name", "^etl-", "--name", "load"]))
    assert [several.name_matches(name) for name in ("etl-1", "bulk-load", "web")] == [True, True, False]
    assert several.search_term() == ""  # two patterns: the server cannot filter by both
    assert Selector.of(parse_options(["--name", "nightly"])).search_term() == "nightly"
    assert Selector.of(parse_options(["--name", "^nightly"])).search_term() == ""
    everything = Selector.of(parse_options(["--all"]))
    assert everything.name_matches("anything") and everything.tags == frozenset()
    assert Selector.of(parse_options(["--tag", "a", "--tag", "b"])).tags == {"a", "b"}


def test_labels_are_names_with_short_ids_where_names_repeat_and_never_change() -> None:
    labels: dict[str, str] = {}
    given = Labels(by_name=True, labels=labels)
    given.give([Found(A, "build"), Found(B, "build")])
    assert labels == {A: "build/aaaaaaaa", B: "build/bbbbbbbb"}
    given.give([Found(C, "test")])
    assert labels[C] == "test"
    later = "dddddddd-0000-4000-8000-000000000004"
    given.give([Found(later, "test"), Found(C, "renamed")])  # a second "test" joins later
    assert (labels[later], labels[C]) == ("test/dddddddd", "test")
    nameless = "eeeeeeee-0000-4000-8000-000000000005"
    given.give([Found(nameless, "")])
    assert labels[nameless] == "eeeeeeee"


def test_labels_by_id() -> None:
    labels: dict[str, str] = {}
    Labels(by_name=False, labels=labels).give([Found(A, "build"), Found(B, "build")])
    assert labels == {A: "aaaaaaaa", B: "bbbbbbbb"}
