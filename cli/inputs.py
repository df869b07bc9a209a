"""`werkbrug schema` and `werkbrug example`: what each file a person writes holds (cli/file_inputs.py). They send
nothing to any service, so they need no --as."""

import json
from typing import Annotated

import typer

from cli.app import app
from cli.file_inputs import FILE_INPUTS, InputName, example, json_schema

PANEL = "Inputs: the files you write (no --as needed)"


# -- the commands ---------------------------------------------------------------------------------------------------

@app.command(rich_help_panel=PANEL)
def schema(
    name: Annotated[InputName | None, typer.Argument(help="Which input; without it, the list.")] = None,
) -> None:
    """The JSON Schema of a file you write for a command; without NAME, the names.

    person (refer), addendum (partner add), corrections (subject-request submit), staff-register (a party's
    register of staff). JSON Schema 2020-12, from the model the command validates the file with."""
    if name is None:
        for entry in FILE_INPUTS.values():
            print(f"{entry.name:<15} {entry.what}; read by {entry.read_by}")
        return
    print(json.dumps(json_schema(name.value), indent=2))


@app.command("example", rich_help_panel=PANEL)
def example_command(
    name: Annotated[InputName, typer.Argument(help="Which input.")],
    seed: Annotated[int | None, typer.Option(help="The same example every time (the person's synthetic BSN is "
                                                  "otherwise drawn anew, so each example is a new person).")] = None,
) -> None:
    """A valid example of a file you write, which its command accepts as it is.

    `werkbrug example person > person.json`, then `werkbrug refer person.json`. Its BSN is synthetic: it passes
    the 11-test and is drawn anew each time (unless --seed), so each example is a new person."""
    print(json.dumps(example(name.value, seed), indent=2))
