"""README's list of GraphQL root fields is the schema's (issue 16, "README and docs").

The list between the `graphql-root-fields` markers is generated from the served schema
(adapters/graphql/schema.py): every root Query, Mutation and Subscription field with its
arguments (defaults shown), its type and its description. This test fails when the
README's list differs from the schema, printing the block to paste; or write it with

    .venv/bin/python tests/unit/test_readme_graphql.py --write
"""

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
START = "<!-- graphql-root-fields:start"
END = "<!-- graphql-root-fields:end -->"
_BLOCK = re.compile(re.escape(START) + r".*?-->\n(?P<body>.*?)" + re.escape(END), re.DOTALL)


def _default(arg: object) -> str:
    from graphql import Undefined, ast_from_value, print_ast

    value = arg.default_value  # type: ignore[attr-defined]
    if value is Undefined:
        return ""
    node = ast_from_value(value, arg.type)  # type: ignore[attr-defined]
    return f" = {print_ast(node)}" if node is not None else ""


def render_root_fields() -> str:
    """The README's table of root fields, generated from the served schema."""
    from adapters.graphql.schema import build_schema

    schema = build_schema(development=True)._schema
    rows = ["| operation | field | returns | what |", "|---|---|---|---|"]
    for operation, root in (
        ("query", schema.query_type),
        ("mutation", schema.mutation_type),
        ("subscription", schema.subscription_type),
    ):
        if root is None:
            continue
        for name in sorted(root.fields):
            field = root.fields[name]
            args = ", ".join(f"{a}: {arg.type}{_default(arg)}" for a, arg in field.args.items())
            signature = f"`{name}({args})`" if args else f"`{name}`"
            what = (field.description or "").replace("|", "\\|").replace("\n", " ")
            rows.append(f"| {operation} | {signature} | `{field.type}` | {what} |")
    return "\n".join(rows) + "\n"


def readme_root_fields(text: str) -> str:
    found = _BLOCK.search(text)
    assert found is not None, f"README.md has no block between {START!r} and {END!r}"
    return found.group("body")


def test_readme_lists_every_root_field_of_the_schema_and_no_other():
    listed = readme_root_fields(README.read_text(encoding="utf-8"))
    expected = render_root_fields()

    def fields(table: str) -> set[str]:
        return set(re.findall(r"^\| (\w+) \| `(\w+)", table, re.MULTILINE))

    missing, unknown = fields(expected) - fields(listed), fields(listed) - fields(expected)
    assert not missing and not unknown, (
        f"README.md lists GraphQL root fields the schema does not have: {sorted(unknown)}; "
        f"misses: {sorted(missing)}. Regenerate: .venv/bin/python {__file__} --write"
    )
    assert listed == expected, (
        "README.md's GraphQL root fields are out of date (arguments, types or "
        f"descriptions). Regenerate: .venv/bin/python {__file__} --write\n\n{expected}"
    )


def test_the_schema_has_the_fields_the_issue_found_missing():
    # Guards the generator itself: it must see the fields README once forgot.
    table = render_root_fields()
    for row in ("| query | `summary`", "| query | `trendingSeries(", "| subscription | `summary`"):
        assert row in table


def write_readme() -> None:
    text = README.read_text(encoding="utf-8")
    found = _BLOCK.search(text)
    assert found is not None, f"README.md has no block between {START!r} and {END!r}"
    start, end = found.span("body")
    README.write_text(text[:start] + render_root_fields() + text[end:], "utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write_readme()
    else:
        sys.stdout.write(render_root_fields())
