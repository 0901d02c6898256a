"""The prompt catalogue (file name -> Vietnamese text) and the build of its telephone audio.

``load_catalogue`` reads and validates ``ivr/prompts_vi.toml``; ``build`` speaks every text with
espeak-ng and converts it with sox to 8 kHz mono 16-bit WAV (what Asterisk plays without
transcoding), one ``NAME.wav`` per prompt. The synthesiser's leading and trailing silence is
trimmed so that word prompts (numbers, dates, codes) play naturally one after another.

The build is incremental: ``manifest.json`` in the output folder keeps a hash of each prompt's
text and voice, and a prompt whose WAV exists with the same hash is skipped. Files are written
to a temporary name and renamed, so Asterisk never plays half a file. No CLI here:
``ivr/cli.py`` wires ``tongdai prompts build`` to these.

Names that are data rather than catalogue entries get folders of their own, each with its own
manifest: the agencies' names (``co_quan/<agency id>``, from the agencies file, built with the
catalogue) said by the ticket follow-up, and the procedures' names (``thu_tuc/tt_<code digits>``,
built by ``tongdai procedures import``) said by the procedure look-up.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from agencies.model import load_agencies
from dossiers.procedures import Procedure
from ivr.say import WORD_PROMPTS
from tongdai.config_file import read_toml
from tongdai.errors import ConfigError, TongdaiError
from tongdai.settings import Settings, home_path

log = logging.getLogger(__name__)

DEFAULT_VOICE = "vi-vn-x-central"  # Central Vietnamese: the accent of Quảng Nam
#: words per minute; espeak-ng's default is 175, slower is kinder on a phone line
SPEECH_RATE = 140
SAMPLE_RATE = 8000
#: bump when the recipe below changes, so every prompt is rebuilt once
RECIPE_VERSION = 1
MANIFEST = "manifest.json"
NAME_RE = re.compile(r"^[a-z0-9_]+$")
#: seconds one espeak-ng or sox run may take before the build gives up on it
TOOL_TIMEOUT = 60.0

#: the folders (under the sounds folder) of the agencies' and the procedures' names
AGENCY_DIR = "co_quan"
PROCEDURE_DIR = "thu_tuc"

_APT_PACKAGES = {"espeak-ng": "espeak-ng", "sox": "sox"}
#: sox output options: what Asterisk plays without transcoding (8 kHz, mono, 16-bit signed PCM)
_TELEPHONE_FORMAT = ("-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", "-e", "signed-integer")
#: espeak-ng pads each text with ~0.2 s of silence at both ends; a number read as five word
#: prompts would crawl. Trim both ends (the reverse trick), then pad back a little.
_TRIM = ("silence", "1", "0.02", "0.3%", "reverse", "silence", "1", "0.02", "0.3%", "reverse")
_PAD_WORD = ("pad", "0", "0.04")  # words of spoken numbers/dates/codes (ivr.say) run together
_PAD_SENTENCE = ("pad", "0.1", "0.35")  # a short breath between sentences


class Catalogue(Mapping[str, str]):
    """Prompt name -> text, validated. ``source`` is the file it came from (for error messages)."""

    def __init__(self, prompts: Mapping[str, object], source: str = "<memory>") -> None:
        self.source = source
        checked: dict[str, str] = {}
        for name, text in prompts.items():
            if not NAME_RE.match(name):
                raise ConfigError(
                    source,
                    f"prompts.{name}",
                    "name must be lowercase ASCII letters, digits or _ (it becomes NAME.wav)",
                )
            if not isinstance(text, str):
                raise ConfigError(
                    source, f"prompts.{name}", f"must be a string, got {type(text).__name__}"
                )
            if not text.strip():
                raise ConfigError(source, f"prompts.{name}", "text is empty")
            checked[name] = text.strip()
        self._prompts = checked

    def __getitem__(self, name: str) -> str:
        return self._prompts[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._prompts)

    def __len__(self) -> int:
        return len(self._prompts)

    def __repr__(self) -> str:
        return f"Catalogue({self.source!r}, {len(self)} prompts)"


def load_catalogue(path: str | Path) -> Catalogue:
    """Read and validate a catalogue file; every problem is a ``ConfigError`` naming the field."""
    p = Path(path)
    raw = read_toml(p)
    for key in raw:
        if key != "prompts":
            raise ConfigError(str(p), key, "unknown key (the file holds one [prompts] table)")
    table = raw.get("prompts")
    if table is None:
        raise ConfigError(str(p), "prompts", "missing [prompts] table")
    if not isinstance(table, dict):
        raise ConfigError(str(p), "prompts", 'must be a table: [prompts] then name = "text"')
    if not table:
        raise ConfigError(str(p), "prompts", "table is empty")
    return Catalogue(table, source=str(p))


def missing(catalogue: Mapping[str, str], names: Iterable[str]) -> list[str]:
    """The names (sorted, once each) that the catalogue does not have."""
    return sorted({name for name in names if name not in catalogue})


@dataclass(frozen=True)
class BuildReport:
    out_dir: Path
    built: tuple[str, ...]
    skipped: tuple[str, ...]
    seconds: float

    def summary(self) -> str:
        return (
            f"{len(self.built)} prompts built, {len(self.skipped)} up to date "
            f"in {self.out_dir} ({self.seconds:.1f} s)"
        )


def _text_hash(text: str, voice: str) -> str:
    recipe = f"{RECIPE_VERSION}\0{voice}\0{SPEECH_RATE}\0{SAMPLE_RATE}\0{text}"
    return hashlib.sha256(recipe.encode("utf-8")).hexdigest()


def _read_manifest(out_dir: Path) -> dict[str, str]:
    """Name -> hash of what was built; an unreadable manifest only means "rebuild everything"."""
    try:
        raw = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    prompts = raw.get("prompts") if isinstance(raw, dict) else None
    if not isinstance(prompts, dict):
        return {}
    return {k: v for k, v in prompts.items() if isinstance(k, str) and isinstance(v, str)}


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    renamed = False
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
        renamed = True
    finally:
        if not renamed:
            Path(tmp).unlink(missing_ok=True)


def _write_manifest(out_dir: Path, hashes: Mapping[str, str]) -> None:
    body = {"recipe": RECIPE_VERSION, "prompts": dict(sorted(hashes.items()))}
    _atomic_write_text(out_dir / MANIFEST, json.dumps(body, ensure_ascii=False, indent=1) + "\n")


def _find_tools() -> dict[str, str]:
    tools: dict[str, str] = {}
    absent: list[str] = []
    for tool, package in _APT_PACKAGES.items():
        found = shutil.which(tool)
        if found is None:
            absent.append(package)
        else:
            tools[tool] = found
    if absent:
        raise TongdaiError(
            f"building prompts needs {' and '.join(absent)}: run "
            f"`apt-get install {' '.join(absent)}` (as root) and try again"
        )
    return tools


def _run(argv: list[str], stdin: str | None = None) -> None:
    """Run one tool without a shell; its stderr becomes the error message."""
    try:
        done = subprocess.run(
            argv,
            input=None if stdin is None else stdin.encode("utf-8"),
            capture_output=True,
            timeout=TOOL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TongdaiError(f"{Path(argv[0]).name} took over {TOOL_TIMEOUT:.0f} s") from None
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = err[-1] if err else "no message"
        raise TongdaiError(f"{Path(argv[0]).name} exited {done.returncode}: {detail}")


def _synthesise(name: str, text: str, out_dir: Path, voice: str, tools: Mapping[str, str]) -> None:
    """Speak ``text`` into ``out_dir/NAME.wav`` at telephone rate, atomically."""
    temps: list[Path] = []
    try:
        for _ in range(2):
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".wav", dir=out_dir)
            os.close(fd)
            temps.append(Path(tmp))
        raw, telephone = temps
        # The text goes on stdin: no shell, and a text starting with "-" is not an option.
        _run(
            [tools["espeak-ng"], "-v", voice, "-s", str(SPEECH_RATE), "-w", str(raw), "--stdin"],
            stdin=text,
        )
        # -G: guard against clipping when resampling; -V1: only report failures
        pad = _PAD_WORD if name in WORD_PROMPTS else _PAD_SENTENCE
        sox = [tools["sox"], "-G", "-V1", str(raw), *_TELEPHONE_FORMAT, str(telephone)]
        _run([*sox, *_TRIM, *pad])
        os.replace(telephone, out_dir / f"{name}.wav")
    finally:
        for tmp_path in temps:
            tmp_path.unlink(missing_ok=True)


def _default_jobs() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def build(
    catalogue: Mapping[str, str],
    out_dir: str | Path,
    *,
    voice: str = DEFAULT_VOICE,
    force: bool = False,
    progress: bool = True,
    jobs: int | None = None,
) -> BuildReport:
    """Build ``NAME.wav`` for every prompt whose audio is missing or out of date (all if force).

    Raises ``TongdaiError`` if espeak-ng or sox is not installed or a conversion fails; prompts
    built before a failure are kept and recorded, so the next run resumes.
    """
    started = time.monotonic()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wanted = {name: _text_hash(text, voice) for name, text in catalogue.items()}
    previous = {} if force else _read_manifest(out)
    todo = [
        name
        for name in catalogue
        if previous.get(name) != wanted[name] or not (out / f"{name}.wav").is_file()
    ]
    pending = set(todo)
    skipped = [name for name in catalogue if name not in pending]
    built: list[str] = []
    failures: list[str] = []
    if todo:
        tools = _find_tools()
        built, failures = _build_all(catalogue, todo, out, voice, tools, progress, jobs)
    _write_manifest(out, {name: wanted[name] for name in [*skipped, *built]})
    if failures:
        more = f" (and {len(failures) - 3} more)" if len(failures) > 3 else ""
        raise TongdaiError(
            f"{len(failures)} of {len(todo)} prompts failed to build: "
            + "; ".join(failures[:3])
            + more
        )
    report = BuildReport(out, tuple(sorted(built)), tuple(skipped), time.monotonic() - started)
    log.info("prompts: %s", report.summary())
    return report


def _build_all(
    catalogue: Mapping[str, str],
    todo: list[str],
    out: Path,
    voice: str,
    tools: Mapping[str, str],
    progress: bool,
    jobs: int | None,
) -> tuple[list[str], list[str]]:
    """Run the conversions on a small thread pool (each thread waits on its own subprocesses)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    built: list[str] = []
    failures: list[str] = []
    bar = Progress(
        TextColumn("[bold]prompts"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not progress,
    )
    with bar, ThreadPoolExecutor(max_workers=jobs or _default_jobs()) as pool:
        task = bar.add_task("prompts", total=len(todo))
        futures: dict[Future[None], str] = {
            pool.submit(_synthesise, name, catalogue[name], out, voice, tools): name
            for name in todo
        }
        for future in as_completed(futures):
            name = futures[future]
            exc = future.exception()
            if exc is None:
                built.append(name)
            elif isinstance(exc, (TongdaiError, OSError)):
                failures.append(f"{name}: {exc}")
            else:
                raise exc
            bar.advance(task)
    return built, failures


def agency_prompt(agency_id: str) -> str:
    """The prompt (relative to the sounds folder) saying an agency's name."""
    return f"{AGENCY_DIR}/{agency_id}"


def procedure_prompt(keyed: str) -> str:
    """The prompt saying a procedure's name, by the digits of its code (``1004227``)."""
    return f"{PROCEDURE_DIR}/tt_{keyed}"


def procedure_names(procedures: Iterable[Procedure]) -> dict[str, str]:
    """What ``build_names`` speaks into ``PROCEDURE_DIR``: ``tt_<digits>`` -> the name."""
    return {procedure_prompt(p.keyed).removeprefix(f"{PROCEDURE_DIR}/"): p.name for p in procedures}


def build_names(
    names: Mapping[str, str], settings: Settings, folder: str, source: str, *, force: bool = False
) -> BuildReport:
    """Speak ``names`` (prompt name -> text) into ``folder`` of the sounds folder."""
    out = home_path(settings.ivr.sounds_dir) / folder
    return build(Catalogue(names, source=source), out, progress=False, force=force)


def ensure_built(settings: Settings, *, progress: bool = False, force: bool = False) -> BuildReport:
    """Build the configured catalogue into the configured sounds folder (what the lab calls),
    and the agencies' names into its ``co_quan`` folder; ``force``: all of them again."""
    path = home_path(settings.ivr.prompts)
    catalogue = load_catalogue(path)
    absent = missing(catalogue, WORD_PROMPTS)
    if absent:
        raise ConfigError(
            str(path),
            "prompts",
            f"missing word prompts needed to speak numbers and codes: {', '.join(absent)}",
        )
    report = build(catalogue, home_path(settings.ivr.sounds_dir), progress=progress, force=force)
    book = load_agencies(home_path(settings.back_office.agencies))
    build_names({a.id: a.name for a in book}, settings, AGENCY_DIR, book.source, force=force)
    return report
