"""The config files a run layers, read before Snakemake merges them: what Snakemake's own reading lets pass.

Snakemake reads the Snakefile's ``configfile:``, then each ``--configfile``, then ``--config``, and merges them key
by key. Three things pass it silently or without a place to look:

- a duplicate key in one YAML file (the last one wins) and a tab in the indentation ("Config file is not valid
  JSON or YAML", no file, no line): :func:`load` names the file and the line;
- a later layer that changes what a method *is* (``methods: {PGD-AT: {adversarial_embedding: {kind: lds}}}``
  merged into PGD-AT trains LDS and reports it as PGD-AT): :func:`check_method_layers` names both layers and the key;
- ``--config`` values below the top level are read with YAML's BaseLoader, so ``run={methods: null}`` gives the
  string "null" and ``model={epochs: 2}`` the string "2": :func:`typed_cli_config` reads them as a config file would;
- a misspelt part under a method a layer redefines (``adverserial_embedding``) would read as another kind of
  method: it is an unknown key, named with its file;
- the base ``config.yaml`` is looked for in the working directory (``-d``): :func:`loaded` is the start-up line that
  lists the files read, and a missing base is said plainly (:func:`check`, :func:`explain_without_base`) instead
  of as one schema error per key it would have set.

``python -m advtrain.config_layers FILE...`` runs the file checks on its own: Snakemake parses ``--configfile``
files before the workflow starts, so a tab there stops it before :func:`check` can name the line.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import yaml

from advtrain.config import ConfigError, key_path
from advtrain.methods import PARTS, SETTINGS

#: The key of each method part whose value says what the part is (a changed value is another method).
PART_KINDS = {name: part.kind_key for name, part in PARTS.items()}
#: The keys a method may have (the schema's `method`; tests/unit/test_config_layers.py keeps the two equal).
METHOD_KEYS = (*SETTINGS, *PART_KINDS)


# ---------------------------------------------------------------------------- one file


def load(path: str | Path) -> dict:
    """A config file's contents (JSON or YAML, as Snakemake reads it), or a ConfigError naming the file and line of
    a duplicate key, a tab in the indentation, or any other syntax error."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except UnicodeDecodeError as exc:
        raw = path.read_bytes()
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}, line {line}: byte {raw[exc.start]:#04x} is not UTF-8 (config files are read "
                          "as UTF-8)") from None
    duplicates: list[str] = []
    try:  # Snakemake tries JSON first
        data = json.loads(text, object_pairs_hook=lambda pairs: _json_object(pairs, duplicates))
    except ValueError:
        data = _load_yaml(text, path)
    if duplicates:
        try:  # most JSON is YAML too, and YAML's reader knows the line and the key's path
            _load_yaml(text, path)
        except ConfigError as exc:
            if "duplicate key" in str(exc):
                raise
        raise ConfigError(f"{path}: duplicate key {duplicates[0]!r} in a JSON object (only the last would be kept)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file holds keys at its top level (this one holds "
                          f"{'nothing' if data is None else type(data).__name__})")
    return data


def _json_object(pairs, duplicates: list[str]) -> dict:
    keys = [k for k, _ in pairs]
    duplicates += [k for i, k in enumerate(keys) if k in keys[:i]]
    return dict(pairs)


def _load_yaml(text: str, path: Path):
    # One parse: the node tree gives the duplicate keys their lines, then becomes the data (this runs at every
    # Snakemake start-up, dry runs included).
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        loader.dispose()
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        line = text.splitlines()[mark.line] if mark and mark.line < len(text.splitlines()) else ""
        problem = exc.problem or exc.context or "syntax error"
        tab = "\t" in problem or "\t" in line[: len(line) - len(line.lstrip())]
        hint = ": a tab in the indentation (YAML indents with spaces only)" if tab else ""
        raise ConfigError(f"{where}: not valid YAML ({problem}){hint}") from None
    try:
        if root is None:
            return None
        _reject_duplicate_keys(root, [], path, set())
        return loader.construct_document(root)
    finally:
        loader.dispose()


def _reject_duplicate_keys(node, where: list, path: Path, seen: set) -> None:
    if id(node) in seen:  # an alias of a node already checked
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key, line = key_node.value, key_node.start_mark.line + 1
                if key in first:
                    raise ConfigError(
                        f"{path}, line {line}: duplicate key {key_path([*where, key])} (first on line {first[key]}); "
                        "YAML would keep only the last one: remove or rename one of them")
                first[key] = line
                _reject_duplicate_keys(value_node, [*where, key], path, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _reject_duplicate_keys(item, [*where, i], path, seen)


# ---------------------------------------------------------------------------- layers


def _merged(base, overlay):
    """``overlay`` merged into a copy of ``base`` as Snakemake's ``update_config`` merges config layers."""
    if not isinstance(overlay, Mapping):
        return copy.deepcopy(overlay)
    out = dict(base) if isinstance(base, Mapping) else {}
    for key, value in overlay.items():
        out[key] = _merged(out.get(key, {}), value) if isinstance(value, Mapping) else copy.deepcopy(value)
    return out


def _part_kind(part: str, settings):
    if not isinstance(settings, Mapping):
        return None
    value = settings.get(PART_KINDS.get(part, "kind"))
    return tuple(sorted(map(str, value))) if isinstance(value, list) else value


def method_kind(parts) -> dict:
    """What a method is: {part: its kind / recipe / augmenters} for every part (not `train`, its settings, nor
    `family`, which only groups it in the claims table)."""
    if not isinstance(parts, Mapping):
        return {}
    return {part: _part_kind(part, settings) for part, settings in parts.items()
            if part not in SETTINGS and settings is not None}


def _describe(kind: dict) -> str:
    if not kind:
        return "no parts (the baseline)"
    return ", ".join(f"{part} {'+'.join(v) if isinstance(v, tuple) else v}" for part, v in kind.items())


def check_method_layers(layers: list[tuple[str, dict]]) -> None:
    """Stop when a later layer changes what an earlier layer's method is (its parts, or a part's kind).

    ``layers`` are (name, contents) in the order Snakemake merges them. Settings (epsilon, steps, `train`) may be
    changed; a new kind under an existing name would be trained as one method and reported as the other.
    """
    methods: dict[str, tuple[dict, str]] = {}  # name -> (merged parts so far, the layer that defined it)
    for layer, data in layers:
        defined = data.get("methods") if isinstance(data, Mapping) else None
        if not isinstance(defined, Mapping):
            continue
        for name, parts in defined.items():
            _reject_unknown_part(name, parts, layer)  # a misspelt part would read as a new kind of method
            if name not in methods:
                methods[name] = (_merged({}, parts or {}), layer)
                continue
            before, origin = methods[name]
            after = _merged(before, parts) if isinstance(parts, Mapping) else (parts or {})
            if method_kind(after) != method_kind(before):
                raise ConfigError(
                    f"methods.{name}: {layer} changes what the method is: {_describe(method_kind(before))} in "
                    f"{origin}, {_describe(method_kind(after))} once {layer} is merged into it. Config files are "
                    f"merged key by key, so this would train the new method and report it as {name!r}. Give it a "
                    f"new name under `methods` (and in `run.methods`), or edit {origin}.")
            methods[name] = (after, origin)


def _reject_unknown_part(name: str, parts, layer: str) -> None:
    """A method key that is no part (``adverserial_embedding``): the schema's "unknown key" message, with the file."""
    import difflib

    for key in parts if isinstance(parts, Mapping) else ():
        if key not in METHOD_KEYS:
            close = difflib.get_close_matches(str(key), METHOD_KEYS, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(f"methods.{name}.{key}: unknown key in {layer} (allowed here: "
                              f"{', '.join(sorted(METHOD_KEYS))}){hint}")


# ---------------------------------------------------------------------------- --config


def _typed(value):
    if isinstance(value, Mapping):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, str) and value:
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        if parsed is None or isinstance(parsed, bool | int | float):
            return parsed
    return value


def typed_cli_config(cli_config: Mapping) -> dict:
    """``--config`` values with the scalar types a config file would give them (null, booleans, numbers).

    Snakemake reads ``KEY=VALUE`` with int, float, bool, then YAML's BaseLoader, which keeps every nested scalar a
    string: ``run={methods: null}`` is ``{"methods": "null"}``. Strings that are not YAML scalars stay strings.
    """
    return _typed(dict(cli_config or {}))


# ---------------------------------------------------------------------------- all layers of a run


def check(workflow_configfile: str | Path | None, configfiles, cli_config: Mapping | None = None) -> list[str]:
    """Read every config file of a run (the Snakefile's ``configfile:`` when given and present, then each
    ``--configfile``) with :func:`load`, and check the method definitions of all layers (``--config`` last).

    Returns the files read, in merge order; raises ConfigError naming the file and line, or the layers and key.
    """
    files = [Path(workflow_configfile).absolute()] if workflow_configfile and Path(workflow_configfile).exists() else []
    files += [Path(f) for f in configfiles or ()]
    if workflow_configfile and not files:
        raise ConfigError(f"{base_missing(workflow_configfile)}, and no --configfile was given. Run Snakemake in the "
                          "folder that holds the config (or point -d there), or pass it with --configfile.")
    contents: dict[Path, dict] = {}
    layers = []
    for file in files:
        key = file.resolve()
        if key not in contents:
            contents[key] = load(file)
        layers.append((str(file), contents[key]))
    if cli_config:
        layers.append(("--config", typed_cli_config(cli_config)))
    check_method_layers(layers)
    return [name for name, _ in layers if name != "--config"]


def base_missing(workflow_configfile: str | Path) -> str:
    name = Path(workflow_configfile)
    return (f"the base config {name} is not in the working directory {Path.cwd()} (Snakemake's -d / --directory, "
            f"where the Snakefile's `configfile: \"{name}\"` is looked for)")


def loaded(files: list[str], workflow_configfile: str | Path | None) -> str:
    """The start-up line naming the config files of a run in merge order, the base config marked as such (a
    config.yaml in another working directory silently becomes the base: this line shows it)."""
    base = str(Path(workflow_configfile).absolute()) if workflow_configfile else None
    names = [f"{f} (base: {workflow_configfile} in the working directory)" if f == base and i == 0 else f
             for i, f in enumerate(files)]
    line = "Config files, in merge order: " + (", ".join(names) or "none")
    if base and base not in files:
        line += f" (no base {workflow_configfile} in the working directory {Path.cwd()})"
    return line


#: A schema error of a required key that is not set (jsonschema's wording, via advtrain.config.key_path).
_REQUIRED = re.compile(r"^(.+): '([^']+)' is a required property$")


def _unset_key(match: re.Match) -> str:
    return match.group(2) if match.group(1) == "<top level>" else f"{match.group(1)}.{match.group(2)}"


def explain_without_base(explanation: str, workflow_configfile: str | Path, files: list[str],
                         repo_config: Path | None = None) -> str:
    """The schema errors of a run whose base config is missing, with the required keys left unset said once,
    plainly, as what they are: the missing base config (instead of one "'seeds' is a required property" each)."""
    lines = explanation.splitlines()
    unset = [_unset_key(m) for m in map(_REQUIRED.match, lines) if m]
    if not unset:
        return explanation
    if len(unset) > 8:
        unset = [*unset[:8], f"{len(unset) - 8} more keys"]
    read = ", ".join(files) or "no file"
    base = repo_config if repo_config and repo_config.is_file() else workflow_configfile
    plain = (f"{base_missing(workflow_configfile)}: only {read} {'was' if len(files) == 1 else 'were'} read, "
             f"leaving {', '.join(unset)} unset. Pass the base config first (--configfile {base} "
             f"{' '.join(files)}), or run in the folder that holds it.")
    return "\n".join([plain, *(line for line in lines if not _REQUIRED.match(line))])


def main(argv: list[str] | None = None) -> int:
    """``python -m advtrain.config_layers FILE...``: the checks of :func:`check` on these files, in this order."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m advtrain.config_layers CONFIG.yaml [MORE.yaml ...]  (in the order of --configfile)",
              file=sys.stderr)
        return 2
    try:
        check(None, argv)
    except ConfigError as exc:
        print(f"Invalid configuration:\n{exc}", file=sys.stderr)
        return 1
    print(f"{len(argv)} config file(s) read: no duplicate keys, no tabs, no method redefined as another kind")
    return 0


if __name__ == "__main__":
    sys.exit(main())
