"""Run one DISCOVER module of this package over many sessions: locally (a process pool) or on Slurm (submitit).

Each session goes through the same code path as ``du-process`` (discover-utils' ``scripts/process.py``): the
``.trainer`` is read, its script loaded, its ``Processor`` created with the trainer's io and the job's options, and
for the session a ``DatasetManager`` is loaded, ``process_data`` / ``to_output`` run and ``save`` writes the
outputs. The difference: the ``Processor`` (and so the model) is created once per worker process and reused for
every session that worker runs.

Up to date. After a session succeeds, a provenance record ``<state_dir>/<dataset>/<session>/<trainer>.json`` is
written (atomically) holding the job fingerprint (SHA-256 of the trainer file, the options, the ``--data`` request
templates and the nova-infant version) and the size and modification time (ns) of every input and output file. A
later batch skips the session when the record exists, the fingerprint is the same, and every input and output file
still has the recorded size and mtime; anything else (a new option, an edited or replaced input, a missing or
touched output, a new nova-infant version) runs it again. Every model file or folder the job reads (an option value or
a ``.trainer`` default that names an existing path, and the ``.trainer``'s ``<model path>``) enters the fingerprint
with its content identity (per file: relative name, size, mtime; small files such as ``config.json`` and
``checksums`` by SHA-256), so a retrained bundle or a replaced basis re-runs every session that used the old one.

Interrupting. Ctrl-C stops handing out sessions, lets the running ones finish (their outputs are written whole and
recorded) and says so in one line; a second Ctrl-C stops the workers at once (outputs are replaced atomically, so
each is the old or the new file). The sessions not done are reported ``interrupted``; re-running the same command
resumes with them.

Executors. ``local``: ``concurrent.futures.ProcessPoolExecutor`` (spawned workers; torch threads split between them).
``slurm``: one ``submitit`` job array (``sbatch --array``) with the module's resources; each array task runs one
session and keeps its own log (``<state_dir>/slurm/<trainer>/<array id>_<task>_0_log.{out,err}``, named in the final table). A failed session is
retried ``--retries`` times and then reported; the other sessions complete either way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import platform
import time
import traceback
from pathlib import Path
from typing import Sequence

from nova_infant import __version__
from nova_infant.core import write_policy
from nova_infant.core.atomic import atomic_file
from nova_infant.core.dataset_sessions import check_session_name
from nova_infant.core.errors import BatchError, NovaInfantError, PathError
from nova_infant.core.model_identity import content_identity, model_paths
from nova_infant.core.write_policy import safe_relative

log = logging.getLogger("nova_infant")

# NOVA data type -> (discover-utils file source, file extension) of a file-mode ``--data`` entry.
_FILE_KINDS = {
    "stream:video": ("file:stream:video", ".mp4"),
    "stream:audio": ("file:stream:audio", ".wav"),
    "stream:ssistream": ("file:stream:ssistream", ".stream"),
    "annotation:discrete": ("file:annotation:discrete", ".annotation"),
    "annotation:continuous": ("file:annotation:continuous", ".annotation"),
    "annotation:free": ("file:annotation:free", ".annotation"),
}

# Resources per module on Slurm (GPUs, memory GB, time min); command-line options override them.
SLURM_RESOURCES = {
    "dinov2_pca": {"gpus": 1, "mem_gb": 32, "time_min": 240},
    "w2v_bert": {"gpus": 1, "mem_gb": 32, "time_min": 120},
    "emotion_tagger": {"gpus": 0, "mem_gb": 8, "time_min": 120},
    "audio_events": {"gpus": 0, "mem_gb": 8, "time_min": 60},
    "icep_predict": {"gpus": 0, "mem_gb": 8, "time_min": 30},
    "icep_cv": {"gpus": 1, "mem_gb": 32, "time_min": 480},  # one outer ICEP-R fold (``icep cv --executor slurm``)
}
_DEFAULT_RESOURCES = {"gpus": 0, "mem_gb": 8, "time_min": 60}


@dataclasses.dataclass
class SessionResult:
    """Outcome of one session of a batch.

    Attributes
    ----------
    session : str
    status : str
        ``"done"``, ``"skipped"``, ``"failed"`` or ``"interrupted"`` (Ctrl-C before it ran or finished).
    seconds : float
        Wall time in s.
    reason : str
        One line: the error (failed) or why (skipped).
    log : str
        The Slurm log file stem, if any.
    """

    session: str
    status: str
    seconds: float = 0.0
    reason: str = ""
    log: str = ""


@dataclasses.dataclass
class ModuleJob:
    """Everything a worker needs to run the module on a session (picklable: it travels to Slurm jobs).

    Attributes
    ----------
    trainer_path : str
        The ``.trainer`` file (its script is loaded as du-process loads it).
    dataset : str
        NOVA dataset name.
    data : list of dict
        The du-process ``--data`` request: file-mode entries whose ``uri_template`` holds ``{dataset}`` and
        ``{session}``.
    options : dict
        Module options (as ``--options``).
    state_dir : str
        Folder of the provenance records.
    threads : int
        torch intra-op threads per worker (0: leave torch's default).
    """

    trainer_path: str
    dataset: str
    data: list
    options: dict
    state_dir: str
    threads: int = 0

    @property
    def name(self) -> str:
        """The trainer's file stem (e.g. ``dinov2_pca``): names the records and Slurm logs."""
        return Path(self.trainer_path).stem

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the trainer file, options, request templates, nova-infant version and the content
        identity of every model file or folder the job reads (:meth:`model_paths`, :func:`content_identity`)."""
        models = {str(p): content_identity(p) for p in self.model_paths()}
        payload = json.dumps({"trainer": Path(self.trainer_path).read_text(), "options": self.options,
                              "data": self.data, "version": __version__, "models": models}, sort_keys=True,
                             default=str)
        return hashlib.sha256(payload.encode()).hexdigest()

    def model_paths(self) -> list[Path]:
        """Existing files and folders the module reads besides the session's inputs
        (:func:`nova_infant.core.model_identity.model_paths` of the trainer and options)."""
        return model_paths(self.trainer_path, self.options)

    def paths(self, session: str, kind: str) -> list[Path]:
        """File paths of the ``kind`` (``input``/``output``) entries of ``session`` (inactive outputs left out)."""
        out = []
        for entry in self.data:
            if entry.get("type") != kind or str(entry.get("active", True)).lower() in ("false", "0"):
                continue
            out.append(Path(entry["uri_template"].format(dataset=self.dataset, session=session)))
        return out

    def record_path(self, session: str) -> Path:
        """``<state_dir>/<dataset>/<session>/<trainer>.json``: the session's provenance record."""
        return Path(self.state_dir) / self.dataset / session / f"{self.name}.json"


class BatchInterrupted(NovaInfantError):
    """Ctrl-C during a batch: ``results`` holds the sessions that finished (done or failed) before it stopped."""

    def __init__(self, message: str, results: dict):
        super().__init__(message)
        self.results = results


# ---------------------------------------------------------------- requests and sessions


def build_request(trainer_path: str | os.PathLike, root: str | os.PathLike, role: str = "infant",
                  files: dict[str, str] | None = None) -> list[dict]:
    """The file-mode ``--data`` request for every io of a trainer, in NOVA's layout.

    Parameters
    ----------
    trainer_path : path
        ``.trainer`` file.
    root : path
        NOVA data root; files are ``<root>/{dataset}/{session}/<file>``.
    role : str
        Role used in default file names ``<role>.<io default value><ext>`` (e.g. ``infant.video.mp4``).
    files : dict, optional
        ``{io id: file name}`` overrides: a name relative to the session folder, an absolute template with
        ``{dataset}``/``{session}``, or ``off`` to leave an output inactive.

    Returns
    -------
    list of dict
        One entry per io: ``id``, ``type``, ``src``, ``uri_template``, ``active``.

    Raises
    ------
    BatchError
        An override names an io the trainer does not declare, or an io has a data type with no file form.
    """
    from discover_utils.utils import ssi_xml_utils

    trainer = ssi_xml_utils.Trainer()
    trainer.load_from_file(Path(trainer_path))
    files = dict(files or {})
    declared = {io.io_id for io in trainer.meta_io}
    unknown = sorted(set(files) - declared)
    if unknown:
        raise BatchError(f"{trainer_path}: the trainer declares no io {unknown} (it has {sorted(declared)})")
    template_dir = str(Path(root).resolve() / "{dataset}" / "{session}")
    request = []
    for io in trainer.meta_io:
        data_type = ":".join(io.io_data.lower().split(":")[:2])
        if data_type not in _FILE_KINDS:
            raise BatchError(f"{trainer_path}: io {io.io_id} has data type {io.io_data} with no file form")
        src, ext = _FILE_KINDS[data_type]
        default = f"{role}.{io.io_default_value}{ext}"
        name = files.get(io.io_id, default)
        active = name.strip().lower() != "off"
        if not active and io.io_type == "input":
            raise BatchError(f"{trainer_path}: input {io.io_id} cannot be off")
        name = name if active else default  # an inactive entry still needs a readable path (discover-utils)
        if not os.path.isabs(name):
            safe_relative(name, f"--io {io.io_id}")
        uri = name if os.path.isabs(name) else f"{template_dir}/{name}"
        request.append({"id": io.io_id, "type": io.io_type, "src": src, "active": active, "uri_template": uri})
    inputs = {e["uri_template"]: e["id"] for e in request if e["type"] == "input"}
    for entry in request:
        if entry["type"] == "output" and entry["active"] and entry["uri_template"] in inputs:
            raise PathError(f"--io {entry['id']}={Path(entry['uri_template']).name}: is the file of input "
                            f"{inputs[entry['uri_template']]}; refusing to write an output over an input: name "
                            f"another file")
    return request


# ---------------------------------------------------------------- provenance


def _with_data_files(paths: Sequence[Path]) -> list[Path]:
    """``paths`` plus the data file ``<name>~`` beside each SSI stream / annotation header that has one."""
    out = []
    for path in paths:
        out.append(path)
        data = path.with_name(path.name + "~")
        if data.exists():
            out.append(data)
    return out


def _stat(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def up_to_date(job: ModuleJob, session: str, fingerprint: str | None = None) -> tuple[bool, str]:
    """Whether ``session``'s outputs are complete and up to date (see the module docstring) and why not.

    Returns
    -------
    (bool, str)
        Up to date or not, and the one-line reason (e.g. ``"no provenance record"``, ``"<path> changed or missing"``).
    """
    try:
        check_session_name(session)
    except NovaInfantError as exc:
        return False, str(exc)
    record_path = job.record_path(session)
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return False, "no provenance record"
    if record.get("fingerprint") != (fingerprint or job.fingerprint()):
        return False, "trainer, options, model files or version changed"
    for kind in ("inputs", "outputs"):
        for path, stat in record.get(kind, {}).items():
            if _stat(Path(path)) != stat:
                return False, f"{path} changed or missing"
    wanted = {str(p) for p in job.paths(session, "output")}
    if not wanted <= set(record.get("outputs", {})):
        return False, "an output is not recorded"
    return True, "up to date"


def _write_record(job: ModuleJob, session: str, started: float) -> None:
    outputs = {str(p): _stat(p) for p in _with_data_files(job.paths(session, "output"))}
    missing = [p for p, s in outputs.items() if s is None]
    if missing:
        raise NovaInfantError(f"session {session}: the module wrote no {', '.join(missing)}")
    record = {"module": job.name, "session": session, "dataset": job.dataset, "fingerprint": job.fingerprint(),
              "inputs": {str(p): _stat(p) for p in _with_data_files(job.paths(session, "input"))}, "outputs": outputs,
              "options": job.options, "seconds": round(time.time() - started, 3), "host": platform.node(),
              "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}

    with atomic_file(job.record_path(session), suffix=".json") as staged:
        staged.write_text(json.dumps(record, indent=1))


# ---------------------------------------------------------------- one session, du-process's code path

_PROCESSORS: dict = {}  # per worker process: (trainer path, options) -> Processor (one model load per worker)


def _processor(job: ModuleJob):
    from importlib.machinery import SourceFileLoader

    from discover_utils.utils import ssi_xml_utils

    key = (str(job.trainer_path), json.dumps(job.options, sort_keys=True, default=str))
    if key not in _PROCESSORS:
        if job.threads > 0:
            import torch

            torch.set_num_threads(job.threads)
        trainer = ssi_xml_utils.Trainer()
        trainer.load_from_file(Path(job.trainer_path))
        script = (Path(job.trainer_path).parent / trainer.model_script_path).resolve()
        source = SourceFileLoader("ns_cl_" + script.stem, str(script)).load_module()
        cls = getattr(source, trainer.model_create)
        _PROCESSORS.clear()  # one module per worker at a time
        _PROCESSORS[key] = (cls(model_io=trainer.meta_io, opts=dict(job.options), trainer=trainer), trainer)
    return _PROCESSORS[key]


def run_session(job: ModuleJob, session: str) -> SessionResult:
    """Run the module on one session as du-process does and record its provenance; never raises for a session's
    own failure (the result says ``failed`` and the one-line reason; the traceback goes to the log).

    Returns
    -------
    SessionResult
    """
    started = time.time()
    try:
        with write_policy.job(job.name):  # inputs of this session: never replaced by its outputs
            return _run_session(job, session, started)
    except Exception as exc:  # a batch goes on with the rest
        if not isinstance(exc, NovaInfantError):  # ours are one-line errors; anything else: the traceback to the log
            traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[0]
        return SessionResult(session, "failed", time.time() - started, f"{type(exc).__name__}: {first}"[:300])


def _run_session(job: ModuleJob, session: str, started: float) -> SessionResult:
    """:func:`run_session` inside its write job (raises on a failure)."""
    from discover_utils.data.annotation import DiscreteAnnotation
    from discover_utils.data.provider.data_manager import DatasetManager
    from discover_utils.utils.anno_utils import pack_remove

    check_session_name(session)
    for path in job.paths(session, "input"):
        write_policy.register_input(path)
        if not path.is_file():
            raise NovaInfantError(f"{path}: input file missing")
    for path in job.paths(session, "output"):
        path.parent.mkdir(parents=True, exist_ok=True)
    processor, _ = _processor(job)
    provider = DatasetManager(dataset=job.dataset, data_description=[dict(e) for e in job.data],
                              source_context={"request": {}}, session_names=[session])
    provider.load()
    data = processor.process_data(provider)
    output = processor.to_output(data)
    manager = provider.sessions[session]["manager"]
    for io_id, obj in output.items():
        if isinstance(obj, DiscreteAnnotation):  # du-process's defaults (min gap/duration off)
            obj.data = pack_remove(obj.data, min_gap=-999999999, min_dur=-999999999)
        manager.output_data_templates[io_id] = obj
    provider.save()
    _write_record(job, session, started)
    return SessionResult(session, "done", time.time() - started)


def _init_worker(threads: int, gpu_queue=None) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it lets running sessions finish
    logging.basicConfig(level=logging.WARNING)
    if gpu_queue is not None:  # before torch initialises CUDA: this worker sees only its own GPU
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu_queue.get())
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def _run_local(job: ModuleJob, sessions: Sequence[str], workers: int, retries: int, bar,
               gpus: Sequence[str] = (), task=None) -> dict:
    """Run ``task(job, item)`` (default :func:`run_session`) for every item in a spawned process pool; returns
    ``{item: SessionResult}``. ``job`` needs ``threads``; ``task`` must be a module-level function returning a
    :class:`SessionResult` (ICEP-R CV folds use it too: :func:`nova_infant.icep.pipeline.run_fold_file`)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    results: dict[str, SessionResult] = {}
    pending = list(sessions)
    for attempt in range(retries + 1):
        # a fresh pool per attempt: a worker killed (out of memory) breaks the whole pool
        n_workers = min(workers, len(pending))
        gpu_queue = None
        if gpus:
            gpu_queue = context.Queue()
            for i in range(n_workers):  # round robin: 2 workers on 1 GPU share it
                gpu_queue.put(gpus[i % len(gpus)])
        with ProcessPoolExecutor(max_workers=n_workers, initializer=_init_worker, mp_context=context,
                                 initargs=(job.threads, gpu_queue)) as pool:
            futures = {pool.submit(task or run_session, job, s): s for s in pending}
            pending = []

            def collect(done_futures, retry: bool) -> None:
                for future in done_futures:
                    session = futures[future]
                    try:
                        result = future.result()
                    except Exception as exc:  # the worker died (killed, out of memory)
                        result = SessionResult(session, "failed", 0.0,
                                               (f"{type(exc).__name__}: {exc}".splitlines() or [""])[0])
                    if retry and result.status == "failed" and attempt < retries:
                        pending.append(session)
                        continue
                    results[session] = result
                    bar.update(1)

            try:
                collect(as_completed(futures), True)
            except KeyboardInterrupt:
                _stop_pool(pool, futures, results, collect)
        if not pending:
            break
    return results


def _stop_pool(pool, futures: dict, results: dict, collect) -> None:
    """Ctrl-C in :func:`_run_local`: cancel the queued items, let the running ones finish (a second Ctrl-C
    terminates the workers), then raise :class:`BatchInterrupted` with the results so far."""
    import sys

    for future in futures:
        future.cancel()
    running = [f for f in futures if not f.cancelled() and not f.done()]
    from tqdm import tqdm

    tqdm.write(f"interrupted: finishing the {len(running)} running item(s) so that every output is whole (Ctrl-C "
               f"again stops them now); re-run the same command to resume", file=sys.stderr)
    from concurrent.futures import as_completed

    try:
        collect(as_completed([f for f in futures if not f.cancelled()]), False)
    except KeyboardInterrupt:  # second Ctrl-C: stop the workers (each output is replaced atomically: old or new)
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
    raise BatchInterrupted("interrupted", dict(results))


def _run_slurm(job: ModuleJob, sessions: Sequence[str], retries: int, resources: dict, bar,
               poll_s: float = 2.0, task=None, folder=None) -> dict:
    """One submitit job array running ``task(job, item)`` (default :func:`run_session`) per item, resubmitting
    failed items ``retries`` times; logs in ``folder`` (default ``<state_dir>/slurm/<job name>``). Returns
    ``{item: SessionResult}`` with each result's ``log``."""
    import submitit

    folder = Path(folder) if folder is not None else Path(job.state_dir) / "slurm" / job.name
    executor = submitit.AutoExecutor(folder=str(folder), cluster="slurm")  # logs: <array>_<task>_0_log.*
    params = {"name": f"nova-infant-{job.name}", "timeout_min": int(resources["time_min"]),
              "mem_gb": float(resources["mem_gb"]), "cpus_per_task": int(resources.get("cpus_per_task") or 1),
              "slurm_array_parallelism": int(resources.get("max_parallel") or 64)}
    if int(resources.get("gpus") or 0) > 0:
        params["gpus_per_node"] = int(resources["gpus"])
    if resources.get("partition"):
        params["slurm_partition"] = resources["partition"]
    extra = dict(resources.get("slurm_additional_parameters") or {})
    if extra:
        params["slurm_additional_parameters"] = extra
    executor.update_parameters(**params)
    results: dict[str, SessionResult] = {}
    pending = list(sessions)
    for attempt in range(retries + 1):
        jobs = executor.map_array(task or run_session, [job] * len(pending), pending)
        open_jobs = dict(zip(pending, jobs))
        pending = []
        try:
            _poll_slurm(open_jobs, pending, results, attempt, retries, bar, poll_s)
        except KeyboardInterrupt:
            import sys

            from tqdm import tqdm

            tqdm.write(f"interrupted: {len(open_jobs)} array task(s) keep running on Slurm and write whole outputs; "
                       f"re-run the same command to collect and resume (finished sessions are skipped)",
                       file=sys.stderr)
            raise BatchInterrupted("interrupted", dict(results)) from None
        if not pending:
            break
    return results


def _poll_slurm(open_jobs: dict, pending: list, results: dict, attempt: int, retries: int, bar, poll_s: float) -> None:
    """Wait for the array tasks of one attempt; failed ones go to ``pending`` while attempts are left."""
    while open_jobs:
        for session, sjob in list(open_jobs.items()):
            if not sjob.done():
                continue
            del open_jobs[session]
            try:
                result = sjob.result()
            except Exception as exc:  # job killed by Slurm (time, memory) or crashed
                lines = [ln for ln in str(exc).splitlines() if ln.strip()]
                result = SessionResult(session, "failed", 0.0, f"{type(exc).__name__}: {lines[-1] if lines else ''}"[:300])
            result.log = str(sjob.paths.stdout)
            if result.status == "failed" and attempt < retries:
                pending.append(session)
                continue
            results[session] = result
            bar.update(1)
        if open_jobs:
            time.sleep(poll_s)


def slurm_resources(name: str, overrides: dict | None = None) -> dict:
    """Slurm resources of one module's array task.

    Parameters
    ----------
    name : str
        Module (trainer stem, or ``icep_cv``): its entry of :data:`SLURM_RESOURCES`, else 0 GPUs, 8 GB, 60 min.
    overrides : dict, optional
        ``gpus``, ``mem_gb``, ``time_min``, ``cpus_per_task``, ``partition``, ``max_parallel``; None values ignored.

    Returns
    -------
    dict
    """
    res = dict(_DEFAULT_RESOURCES, **SLURM_RESOURCES.get(name, {}))
    res.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return res


def run_batch(job: ModuleJob, sessions: Sequence[str], executor: str = "local", workers: int = 1, retries: int = 1,
              force: bool = False, resources: dict | None = None, progress: bool = True,
              gpus: Sequence[str] = ()) -> list[SessionResult]:
    """Run ``job`` over ``sessions``: skip the up-to-date ones, run the rest on ``executor``, retry failures.

    Parameters
    ----------
    job : ModuleJob
    sessions : sequence of str
        Session names in the dataset.
    executor : {"local", "slurm"}
    workers : int
        Local worker processes (one model load each).
    gpus : sequence of str
        Local GPU ids; worker ``i`` sees only ``gpus[i % len(gpus)]`` (``CUDA_VISIBLE_DEVICES``). Empty: as is.
    retries : int
        Extra attempts for a failed session before it is reported.
    force : bool
        Run every session even if up to date.
    resources : dict, optional
        Slurm resources: ``gpus``, ``mem_gb``, ``time_min``, ``cpus_per_task``, ``partition``, ``max_parallel``.
    progress : bool
        Show a tqdm progress bar (stderr).

    Returns
    -------
    list of SessionResult
        In the order of ``sessions``.

    Raises
    ------
    BatchError
        Unknown executor.
    """
    from tqdm import tqdm

    if executor not in ("local", "slurm"):
        raise BatchError(f"executor: expected local or slurm, got {executor!r}")
    fingerprint = job.fingerprint()
    results: dict[str, SessionResult] = {}
    todo = []
    for session in sessions:
        fresh, why = (False, "forced") if force else up_to_date(job, session, fingerprint)
        if fresh:
            results[session] = SessionResult(session, "skipped", 0.0, why)
        else:
            todo.append(session)
    with tqdm(total=len(sessions), initial=len(results), desc=f"{job.name} ({executor})", unit="session",
              disable=not progress) as bar:
        try:
            if todo and executor == "local":
                results.update(_run_local(job, todo, max(1, workers), retries, bar, tuple(gpus)))
            elif todo:
                results.update(_run_slurm(job, todo, retries, slurm_resources(job.name, resources), bar))
        except BatchInterrupted as exc:
            results.update(exc.results)
            for session in todo:
                results.setdefault(session, SessionResult(session, "interrupted", 0.0,
                                                          "Ctrl-C: not run; re-run the same command to resume"))
    return [results[s] for s in sessions]


def format_table(results: Sequence[SessionResult]) -> str:
    """The final table of a batch: one row per session (status, seconds, reason or log) and a count line.

    Parameters
    ----------
    results : sequence of SessionResult

    Returns
    -------
    str
    """
    width = max([len("session")] + [len(r.session) for r in results])
    lines = [f"{'session':<{width}}  {'status':<7}  {'seconds':>8}  reason"]
    for r in results:
        note = r.reason if r.status != "done" else ""
        if r.status == "failed" and r.log:
            note = f"{note} (log: {r.log})"
        lines.append(f"{r.session:<{width}}  {r.status:<7}  {r.seconds:>8.1f}  {note}")
    counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed", "interrupted")}
    lines.append(f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed"
                 + (f", {counts['interrupted']} interrupted" if counts["interrupted"] else ""))
    return "\n".join(lines)
