"""The ``labnet`` command line.

Exit codes: 0 done, 2 bad input (a one-line error on stderr naming file and key), 1 failure at
run time.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from labnet import __version__
from labnet.app.endings import _after, interrupted_import, stop_message
from labnet.core.errors import ConfigError, LabnetError

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        self.exit(EXIT_BAD_INPUT, f"labnet: error: {message} (see labnet --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="labnet", description="Physical-learning experiments on resistor networks: "
                "bench and simulator.")
    p.add_argument("--version", action="version", version=f"labnet {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="run a protocol (default rig: the simulated 16-edge breadboard)",
                         description="Run a training protocol and write a session folder.")
    run.add_argument("protocol", type=Path, help="protocol TOML file")
    run.add_argument("--rig", type=Path, help="rig TOML file (overrides the protocol's)")
    run.add_argument("--steps", type=int, help="number of training steps (overrides the protocol's)")
    run.add_argument("--seed", type=int, help="seed (overrides the protocol's)")
    run.add_argument("--keep", metavar="best|final",
                     help="which state the run ends in: final (the last, default) or best (the evaluation with the "
                     "lowest train error, written back and re-measured); overrides [train] keep")
    run.add_argument("--out", type=Path, default=Path("sessions"), help="folder for session folders (default: sessions)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--dry-run", action="store_true",
                     help="validate, run on the simulator (a bench rig's addresses replaced by emulated ones) "
                     "through the real drivers, and print the estimated bench time")

    res = sub.add_parser("resume", help="continue a stopped or crashed run from its last complete step",
                         description="Continue a stopped or crashed run from its last complete step; rows are "
                         "appended to the same session CSV and the run ends where the uninterrupted run would have.")
    res.add_argument("session", type=Path, help="session folder (as printed by `labnet run`)")
    res.add_argument("--quiet", action="store_true", help="no progress bar")
    kind = res.add_mutually_exclusive_group()
    kind.add_argument("--dry-run", action="store_true",
                      help="resume on the simulator (the bench rig's emulated addresses); the default for a dry-run "
                      "session, refused for a session that ran on the real bench")
    kind.add_argument("--on-bench", action="store_true",
                      help="resume a dry-run session on the real bench its rig file names (default: a dry run "
                      "resumes as a dry run); refused once the session has a checkpoint of the simulator's state")

    cal = sub.add_parser("calibrate", help="measure every edge's code -> conductance table in situ",
                         description="Calibrate a rig in situ: least-squares conductances from node voltages under "
                         "source patterns over a code sweep, part model per edge, table CSV in a session folder.")
    cal.add_argument("file", type=Path, help="rig TOML file, or a calibrate protocol (e.g. protocols/calibrate.toml)")
    cal.add_argument("--rig", type=Path, help="rig TOML file (overrides the protocol's)")
    cal.add_argument("--out", type=Path, default=Path("sessions"), help="folder for session folders (default: sessions)")

    prb = sub.add_parser("probe", help="measure the response to random input voltages (D_eff, gain)",
                         description="Apply seeded random voltage patterns, measure every node, and report the "
                         "participation ratio (D_eff) and gain of the responses with bootstrap error bars.")
    prb.add_argument("file", type=Path, help="rig TOML file, or a probe protocol (e.g. protocols/probe.toml)")
    prb.add_argument("--rig", type=Path, help="rig TOML file (overrides the protocol's)")
    prb.add_argument("--codes-from", type=Path, help="session folder whose final codes to probe (a trained network)")
    prb.add_argument("--samples", type=int, help="number of random patterns (overrides the protocol's)")
    prb.add_argument("--out", type=Path, default=Path("sessions"), help="folder for session folders (default: sessions)")

    inf = sub.add_parser("infer", help="rank a probed network's task inputs and outputs from its responses alone",
                         description="From random-probe responses only: rank the driven nodes as task inputs and "
                         "the measured nodes as task outputs (with --before: by the change since that probe).")
    inf.add_argument("session", type=Path, help="probe session folder (labnet probe of the trained network)")
    inf.add_argument("--before", type=Path, help="probe session folder of the same rig before training")

    rep = sub.add_parser("report", help="write figures and a report page into a session folder",
                         description="Figures (PNG), report.md and a self-contained report.html for a "
                         "session folder (run, calibrate, probe; a partial report for a run that stopped or "
                         "failed) or a sweep folder.")
    rep.add_argument("session", type=Path, help="session or sweep folder (as printed by the command that wrote it)")

    swp = sub.add_parser("sweep", help="run an ensemble / parameter sweep of in-silico training on Dask",
                         description="Run every point of a sweep file (in-silico training + physical-effects "
                         "analysis) on a local Dask cluster or an existing one; results.parquet in --out. "
                         "Re-running the same command computes only the missing points.")
    swp.add_argument("sweep", type=Path, help="sweep TOML file (e.g. protocols/sweeps/small.toml)")
    where = swp.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", help="existing Dask scheduler (tcp://host:8786)")
    where.add_argument("--scheduler-file", metavar="FILE", help="Dask scheduler file (dask-jobqueue, dask scheduler)")
    swp.add_argument("--workers", type=int, help="local worker processes (default: CPU count)")
    swp.add_argument("--out", type=Path, help="sweep folder (default: sweeps/<name>)")
    swp.add_argument("--quiet", action="store_true", help="no progress bar")

    doc = sub.add_parser("doctor", help="bench bring-up: list ports, identify instruments, check the wiring",
                         description="Validate a rig file, list serial ports and VISA resources, open and identify "
                         "every instrument the rig names and compare it with the file, then check the wiring "
                         "(safe source patterns, Kirchhoff least squares): names an open, shorted or swapped edge, "
                         "swapped meter channels or a loaded node. Exit 0 clean, 1 findings, 2 bad input.")
    doc.add_argument("rig", type=Path, help="rig TOML file (e.g. protocols/rigs/sim16.toml)")
    doc.add_argument("--json", action="store_true", help="print the findings as JSON instead of the report")
    doc.add_argument("--dry-run", action="store_true",
                     help="run on the simulator (a bench rig's addresses replaced by emulated ones)")
    doc.add_argument("--seed", type=int, help="seed of the simulator's run-to-run noise (default: the rig's)")
    doc.add_argument("--responses", action="store_true",
                     help="also measure each voltage source's step response (response_tau_s for the rig file)")

    wat = sub.add_parser("watch", help="live view of a running session or sweep (from another terminal)",
                         description="Follow a running session (training, calibrate, probe) or sweep folder and "
                         "redraw error, codes and the latest free/clamped voltages as rows arrive. A window when "
                         "there is a display, else (or with --png) a PNG rewritten every --interval seconds.")
    wat.add_argument("path", type=Path, help="session or sweep folder, or a folder of sessions (its newest)")
    wat.add_argument("--interval", type=float, default=1.0, help="seconds between redraws (default 1)")
    wat.add_argument("--png", type=Path, help="write the figure to this PNG instead of a window")
    wat.add_argument("--once", action="store_true", help="draw one frame now and exit")
    wat.add_argument("--timeout", type=float, help="give up (exit 1) after this many seconds")

    val = sub.add_parser("validate", help="validate protocol and rig files without touching hardware",
                         description="Validate protocol and rig files; nothing is sent to any instrument.")
    val.add_argument("files", nargs="+", type=Path, help="protocol or rig TOML files")
    return p


def _kind_of(path: Path) -> str:
    from labnet.config.schema import read_toml

    data = read_toml(path)
    if "rig" in data and "protocol" not in data:
        return "rig"
    if "protocol" in data or "sweep" in data:
        return "protocol" if "protocol" in data else "sweep"
    raise ConfigError(str(path), "-", "neither a protocol (no [protocol] table) nor a rig file (no [rig] table) "
                      "nor a sweep (no [sweep] table)")


def _protocol_kind(path: Path) -> str:
    from labnet.config.schema import read_toml

    head = read_toml(path).get("protocol", {})
    return str(head.get("kind", "train")) if isinstance(head, dict) else "train"


def cmd_validate(args: argparse.Namespace) -> int:
    from labnet.config.protocol import load_protocol
    from labnet.config.rigfile import load_rig

    for f in args.files:
        if _kind_of(f) == "sweep":
            from labnet.config.sweep_file import load_sweep

            sw = load_sweep(f)
            print(f"{f}: ok (sweep {sw.name!r}, {len(sw.points)} points, varied: {', '.join(sw.varied) or 'nothing'})")
        elif _kind_of(f) == "rig":
            spec = load_rig(f)
            print(f"{f}: ok (rig {spec.name!r}, {spec.kind}, {spec.network.n_nodes} nodes, "
                  f"{spec.network.n_edges} edges, part {spec.part.name})")
            for w in spec.warnings:  # (also logged by load_rig)
                print(f"  warning: {w}")
        elif _protocol_kind(f) in ("calibrate", "probe"):
            from labnet.config.calibrate_file import load_calibrate_protocol
            from labnet.config.probe_file import load_probe_protocol

            kind = _protocol_kind(f)
            other = load_calibrate_protocol(f) if kind == "calibrate" else load_probe_protocol(f)
            print(f"{f}: ok (protocol {other.name!r}, {kind}, rig {other.rig.name!r})")
        else:
            proto = load_protocol(f)
            print(f"{f}: ok (protocol {proto.name!r}, {proto.kind}, rig {proto.rig.name!r}, "
                  f"{proto.train.steps} steps)")
            for w in proto.rig.warnings:
                print(f"  warning: {w}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from labnet.app.runner import run_protocol
    from labnet.app.summary import summary
    from labnet.config.protocol import load_protocol

    proto = load_protocol(args.protocol, rig=args.rig, steps=args.steps, seed=args.seed, keep=args.keep)
    dry_run = bool(args.dry_run) and not proto.rig.simulated  # a bench rig file on its emulated twin
    if args.dry_run:
        from dataclasses import replace

        from labnet.app.build import dry_run_spec

        proto = replace(proto, rig=dry_run_spec(proto.rig))
    timer = None
    if args.dry_run:
        from labnet.app.build import step_timer

        timer = step_timer(proto.rig)
    outcome = run_protocol(proto, args.out, progress=not args.quiet, subscribers=[timer] if timer else (),
                           dry_run=dry_run)
    print(summary(outcome))
    if args.dry_run:
        from labnet.app.build import wire_report

        print(wire_report(outcome.rig, outcome.result.steps))
        if timer is not None:
            print(timer.text())
        from labnet.app.measurement import plan_text

        print(plan_text(proto, outcome.result.bench_s, outcome.result.steps))
    return EXIT_OK if outcome.result.status == "completed" else EXIT_FAIL


def cmd_resume(args: argparse.Namespace) -> int:
    from labnet.app.runner import resume_session
    from labnet.app.summary import summary

    mode = "dry_run" if args.dry_run else "on_bench" if args.on_bench else "same"
    outcome = resume_session(args.session, progress=not args.quiet, mode=mode)
    print(summary(outcome))
    return EXIT_OK if outcome.result.status == "completed" else EXIT_FAIL


def cmd_calibrate(args: argparse.Namespace) -> int:
    from labnet.app.calibrate import calibration_summary, run_calibration
    from labnet.config.calibrate_file import load_calibrate_protocol

    proto = load_calibrate_protocol(args.file, rig=args.rig)
    res, folder, rig = run_calibration(proto, args.out)
    print(calibration_summary(res, folder, rig))
    return EXIT_OK


def cmd_probe(args: argparse.Namespace) -> int:
    from labnet.app.probe_run import codes_from_session, probe_summary, run_probe_protocol
    from labnet.config.probe_file import load_probe_protocol

    proto = load_probe_protocol(args.file, rig=args.rig)
    if args.samples is not None and args.samples < 3:
        raise ConfigError("--samples", "samples", f"expected at least 3, got {args.samples}")
    codes = codes_from_session(args.codes_from, proto.network, proto.rig.limits) if args.codes_from else None
    res, folder, rig, model = run_probe_protocol(proto, args.out, codes=codes, samples=args.samples,
                                                 codes_from=args.codes_from)
    print(probe_summary(res, folder, rig, model))
    return EXIT_OK


def cmd_infer(args: argparse.Namespace) -> int:
    from labnet.app.infer_cmd import infer_session, infer_summary

    print(infer_summary(*infer_session(args.session, args.before)))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from labnet.app.report import write_report

    page = write_report(args.session)
    print(f"labnet report: {page} (and {page.with_suffix('.html').name})")
    return EXIT_OK


def cmd_sweep(args: argparse.Namespace) -> int:
    from labnet.app.sweep import run_sweep, summary
    from labnet.config.sweep_file import load_sweep

    sweep = load_sweep(args.sweep)
    if args.workers is not None and args.workers < 1:
        raise ConfigError("--workers", "workers", f"expected at least 1, got {args.workers}")
    out = args.out or Path("sweeps") / sweep.name
    try:
        print(summary(run_sweep(sweep, out, scheduler=args.scheduler, scheduler_file=args.scheduler_file,
                                workers=args.workers, progress=not args.quiet)))
    except KeyboardInterrupt as exc:
        print(f"labnet: sweep stopped ({exc or 'Ctrl-C'}); finished chunks are kept in {out}/parts; "
              "the same command computes the rest", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from labnet.config.rigfile import load_rig

    if args.seed is not None and args.seed < 0:
        raise ConfigError("--seed", "seed", f"expected a non-negative integer, got {args.seed}")
    spec = load_rig(args.rig)  # validated before anything is opened (bad input: exit 2)
    from labnet.app.doctor import run_doctor

    report = run_doctor(spec, dry_run=bool(args.dry_run), sim_seed=args.seed, responses=bool(args.responses))
    if args.json:
        import json

        print(json.dumps(report.to_dict(), indent=1))
    else:
        print(report.text())
    return report.exit_code


def cmd_watch(args: argparse.Namespace) -> int:
    from labnet.app.watch import watch

    if not args.interval > 0:
        raise ConfigError("--interval", "interval", f"expected seconds > 0, got {args.interval}")
    if args.png is not None and args.png.suffix.lower() != ".png":
        raise ConfigError("--png", "png", f"expected a file name ending in .png, got {str(args.png)!r}")
    try:
        return watch(args.path, interval=args.interval, png=args.png, once=args.once, timeout=args.timeout)
    except KeyboardInterrupt:
        print("labnet: watch ended (Ctrl-C); the watched run is not affected", file=sys.stderr)
        return EXIT_OK


COMMANDS = {"watch": cmd_watch, "run": cmd_run, "resume": cmd_resume, "validate": cmd_validate, "calibrate": cmd_calibrate,
            "probe": cmd_probe, "infer": cmd_infer, "report": cmd_report, "sweep": cmd_sweep, "doctor": cmd_doctor}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``labnet`` command; the exit code. Every ending is one line on stderr: a stop
    (Ctrl-C from the first instant on), bad input, a failure, or a closed stdout pipe."""
    command: str | None = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = args.command
        if not command:
            parser.print_help()
            return EXIT_BAD_INPUT
        from labnet.experiments.signals import stop_signals

        with stop_signals():  # SIGTERM/SIGHUP stop every command like Ctrl-C: cleanup runs
            code = COMMANDS[command](args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except ConfigError as exc:
        print(f"labnet: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as exc:
        print(stop_message(command, exc), file=sys.stderr)
        return EXIT_FAIL
    except ImportError as exc:  # Ctrl-C inside a C extension's import surfaces as an ImportError
        if not interrupted_import(exc):
            raise
        print(stop_message(command, KeyboardInterrupt()), file=sys.stderr)
        return EXIT_FAIL
    except BrokenPipeError:  # `labnet validate *.toml | head -1`: the reader left; say nothing more
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_FAIL
    except (LabnetError, OSError) as exc:  # OSError: a file labnet reads or writes (disk full, I/O error)
        reason = " ".join(str(exc).split()) or type(exc).__name__
        session = getattr(exc, "labnet_session", None)
        after = _after(exc) if session else ""
        if getattr(exc, "labnet_discarded", None):
            after = "nothing was recorded; the empty session folder was removed"
        print(f"labnet: failed: {reason}" + (f"; {after}" if after else ""), file=sys.stderr)
        return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
