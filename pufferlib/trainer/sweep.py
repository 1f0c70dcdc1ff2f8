"""`puffer sweep ENV`: a hyperparameter search on Optuna, each trial a `puffer train` subprocess.

Settings and search space are the [sweep] sections of config/default.ini, config/<env>.ini and a
--config file, then `--sweep.KEY VALUE` on the command line. Keys without a dot are settings
(default.ini lists them); `section.key` ones are the parameters searched:

    train.learning_rate = float 1e-4 1e-1 log    # float or int, LOW HIGH, log: a log scale
    policy.hidden_size = choice 32 64 128        # one of these values
    train.total_timesteps = int 0.1x 1x log      # Nx: N times the env's own value of the key
    train.gamma = none                           # leave out a key the defaults search

Each trial is `python -m pufferlib.trainer train ENV` with the trial's values as overrides, run
in its own folder; the sweep reads the log.jsonl every run writes. A subprocess because a trial
that crashes (an env's segfault, a NaN loss, memory) then takes down its own process only and is
recorded as failed with the end of its stderr; because the sweep then depends on no trainer
internals and never imports torch itself; and because a pruned trial stops as on Ctrl-C (SIGINT).
On Linux a trial also gets SIGINT when the sweep process dies, so none outlives it.

Objectives: the trial's score (its episode stat, the mean over its last SCORE_EPOCHS epochs),
maximised, and its cost (agent steps or training seconds), minimised: Optuna keeps the Pareto
front of the two. Optuna's pruners work on one objective only, so pruning needs cost = none.

Storage: study.db (SQLite) in the sweep folder, or an Optuna storage URL that several machines
share, each running the same command. `trials` counts completed and pruned trials of the whole
study, with those running on other workers: a worker starts no trial beyond it. A trial whose
sweep process died is marked failed when a sweep next starts on its machine, or by any worker
once its heartbeat is stale (Optuna's heartbeat, HEARTBEAT seconds).
"""
import difflib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections import deque
from pathlib import Path

from pufferlib.exceptions import APIUsageError
from pufferlib.trainer.config import (CONFIG_DIR, SECTIONS, SWEEP, config_path, parse_overrides,
                                      parse_value, read_config_file, read_ini)

SETTINGS = ('trials', 'method', 'objective', 'cost', 'pruner', 'prune_warmup', 'storage', 'name',
            'data_dir', 'seed', 'max_failures')
METHODS = ('tpe', 'cmaes', 'random', 'nsga2')
COSTS = {'steps': 'agent_steps', 'time': 'uptime', 'none': None}   # cost -> its log.jsonl field
PRUNERS = ('auto', 'median', 'hyperband', 'none')
SCORE_EPOCHS = 5      # one epoch holds few episodes: a trial's score is a trailing mean
HEARTBEAT = 60        # seconds; a running trial without a heartbeat for 3 of them is failed
STOP_SECONDS = 30     # a trial stopped with SIGINT gets this long to exit before SIGKILL
RANGE_FORM = ("use 'float LOW HIGH [log]', 'int LOW HIGH [log]' or 'choice A B ...' (Nx is N "
              "times the env's own value), or none to leave the key out")


class TrialFailed(Exception):
    """A trial's training run failed; the message is the end of its stderr."""


# ---- settings and search space -------------------------------------------------------------------

def load_sweep(env_name, words, config_file=None):
    """(settings, space, base) of `puffer sweep env_name [--config config_file] words`: words are
    --sweep.KEY VALUE (settings, space) and --section.key value (every trial's); base is the
    list of overrides every trial runs with. Every key and range is checked here, before a trial."""
    from pufferlib.trainer import cli
    kind = cli.env_creator(env_name)[1]
    found = {section: {} for section in SECTIONS + (SWEEP,)}
    read_ini(CONFIG_DIR / 'default.ini', found)
    path = config_path(env_name, emulated=kind in ('gymnasium', 'pettingzoo'))
    if path is not None:
        read_ini(path, found)
    sweep = found[SWEEP]
    base = []
    if config_file is not None:
        base, file_sweep = read_config_file(config_file)
        sweep.update(file_sweep)
    cli_base = []
    for key, value in parse_overrides(words):
        section, _, field = key.partition('.')
        if section == SWEEP:
            sweep[field] = value
        else:
            cli_base.append(f'--{key}={value}')
    config = cli.load(env_name, cli_base, config_file)   # the base overrides, checked
    base += cli_base
    settings = check_settings({k: v for k, v in sweep.items() if '.' not in k})
    space = {}
    for key, text in sweep.items():
        if '.' not in key or text is None:
            continue
        section, _, field = key.partition('.')
        current = config.get(section, {}).get(field, 0)
        try:   # is it a config key? (its current value passes the schema's check)
            cli.load(env_name, base + [f'--{key}={current}'])
        except APIUsageError as e:
            raise APIUsageError(f'[sweep] {key}: {e}') from None
        space[key] = parse_range(key, text, config[section].get(field))
    if not space:
        raise APIUsageError('[sweep] has no parameter to search: add one, e.g. '
                            "--sweep.train.learning_rate 'float 1e-4 1e-1 log'")
    return settings, space, base


def check_settings(settings):
    for key in ('cost', 'pruner'):
        if settings.get(key, '') is None:   # `none` was read as None
            settings[key] = 'none'
    for key in settings:
        if key not in SETTINGS:
            close = difflib.get_close_matches(key, SETTINGS, n=3, cutoff=0.6)
            hint = f'did you mean {", ".join("sweep." + c for c in close)}?' if close else (
                f'settings are {", ".join(SETTINGS)}; parameters are section.key')
            raise APIUsageError(f'unknown sweep setting sweep.{key}: {hint}')

    def need(key, ok, what):
        if not ok:
            raise APIUsageError(f'sweep.{key} is {settings[key]!r}: use {what}')
    need('trials', isinstance(settings['trials'], int) and settings['trials'] > 0, 'a positive integer')
    need('method', settings['method'] in METHODS, ', '.join(METHODS))
    need('cost', settings['cost'] in COSTS, ', '.join(COSTS))
    need('pruner', settings['pruner'] in PRUNERS, ', '.join(PRUNERS))
    need('prune_warmup', isinstance(settings['prune_warmup'], int) and settings['prune_warmup'] >= 0,
         'a number of epochs (0 or more)')
    need('max_failures', isinstance(settings['max_failures'], int) and settings['max_failures'] > 0,
         'a positive integer')
    need('seed', settings['seed'] is None or isinstance(settings['seed'], int), 'an integer or None')
    need('objective', isinstance(settings['objective'], str), 'an episode stat such as score')
    if settings['cost'] != 'none':
        if settings['method'] == 'cmaes':
            raise APIUsageError('sweep.method cmaes optimises one objective: add --sweep.cost none, '
                                'or use tpe, random or nsga2 for score and cost')
        if settings['pruner'] not in ('auto', 'none'):
            raise APIUsageError(f"sweep.pruner {settings['pruner']}: Optuna prunes single-objective "
                                f"studies only, and sweep.cost {settings['cost']} is a second "
                                'objective: add --sweep.cost none, or --sweep.pruner none')
    return settings


def parse_range(key, text, current):
    """('float' | 'int', low, high, log) or ('choice', [values]) from a [sweep] line; `current`
    is the key's value in the env's config (the N of an Nx)."""
    def fail(why):
        raise APIUsageError(f'[sweep] {key} = {text}: {why}; {RANGE_FORM}')

    def value(word):
        if word.endswith('x') and isinstance(parse_value(word[:-1]), (int, float)):
            if isinstance(current, bool) or not isinstance(current, (int, float)):
                fail(f"{word} is relative to the env's {key}, which is {current!r}, not a number")
            scaled = parse_value(word[:-1]) * current
            return int(round(scaled)) if isinstance(current, int) else scaled
        return parse_value(word)

    words = str(text).split()
    if not words or words[0] not in ('float', 'int', 'choice'):
        fail(f'unknown kind {words[0] if words else ""!r}')
    if words[0] == 'choice':
        if len(words) < 3:
            fail('a choice needs two values or more')
        return ('choice', [value(w) for w in words[1:]])
    kind, log = words[0], words[-1] == 'log'
    bounds = [value(w) for w in words[1:len(words) - log]]
    if len(bounds) != 2:
        fail(f'{kind} needs two bounds, LOW and HIGH')
    for bound in bounds:
        if isinstance(bound, bool) or not isinstance(bound, (int, float)):
            fail(f'{bound!r} is not a number')
        if kind == 'int' and bound != int(bound):
            fail(f'{bound!r} is not an integer')
    low, high = (int(b) if kind == 'int' else float(b) for b in bounds)
    if low >= high:
        fail(f'LOW {low} is not below HIGH {high}')
    if log and low <= 0:
        fail('a log range needs LOW above 0')
    return (kind, low, high, log)


def suggest(trial, key, spec):
    if spec[0] == 'choice':
        return trial.suggest_categorical(key, spec[1])
    kind, low, high, log = spec
    if kind == 'int':
        return trial.suggest_int(key, low, high, log=log)
    return trial.suggest_float(key, low, high, log=log)


# ---- one trial: a training subprocess ---------------------------------------------------------

def trial_signals():
    """preexec_fn (Linux): SIGINT back to its default, as a sweep started in the background
    (`&`, nohup) ignores it and a trial would inherit that, and SIGINT to the trial when the
    sweep process dies, so that no trial outlives it. The C functions are looked up here, in
    the parent: the child only calls them."""
    if not sys.platform.startswith('linux'):
        return None
    import ctypes
    libc, parent = ctypes.CDLL(None, use_errno=True), os.getpid()
    prctl, set_handler = libc.prctl, libc.signal
    PR_SET_PDEATHSIG, SIG_DFL = 1, 0

    def set_signals():
        set_handler(int(signal.SIGINT), SIG_DFL)
        prctl(PR_SET_PDEATHSIG, int(signal.SIGINT))
        if os.getppid() != parent:   # the sweep died before prctl
            os.kill(os.getpid(), signal.SIGINT)
    return set_signals


def stop(proc, wait_first=0.0):
    """End `proc` as Ctrl-C does (SIGINT: it saves and closes its envs), SIGKILL if it hangs.
    `wait_first`: seconds to let it exit on its own (a terminal's Ctrl-C reached it too)."""
    try:
        proc.wait(timeout=wait_first)
        return
    except subprocess.TimeoutExpired:
        pass
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def new_records(log):
    """The complete JSON lines added to `log` since the last call (a line being written is kept
    for the next one)."""
    records = []
    while True:
        position = log.tell()
        line = log.readline()
        if not line.endswith('\n'):
            log.seek(position)
            return records
        records.append(json.loads(line))


def run_trial(env_name, overrides, trial_dir, on_record=None, poll=0.25):
    """Train `env_name` with `overrides` as a subprocess whose run folder is inside trial_dir
    (stdout.log, stderr.log beside it). `on_record(record)` sees every epoch of its log.jsonl; a
    true result stops the run. Returns (records, exit code, stopped, the end of its stderr)."""
    trial_dir = Path(trial_dir)
    trial_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, '-m', 'pufferlib.trainer', 'train', env_name, *overrides,
               f'--train.data_dir={trial_dir}']
    earlier = set(trial_dir.glob('*/log.jsonl'))   # a folder left by an older study of that name
    with open(trial_dir / 'stdout.log', 'w') as out, open(trial_dir / 'stderr.log', 'w') as err:
        proc = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                preexec_fn=trial_signals())
    records, log, stopped = [], None, False
    try:
        while not stopped:
            finished = proc.poll() is not None   # before reading: the last lines are then read
            if log is None:
                found = sorted(set(trial_dir.glob('*/log.jsonl')) - earlier)
                log = open(found[0]) if found else None
            for record in new_records(log) if log is not None else ():
                records.append(record)
                if on_record is not None and on_record(record):
                    stop(proc)
                    stopped = True
                    break
            if finished:
                break
            time.sleep(poll)
    except BaseException:
        stop(proc, wait_first=3.0)
        raise
    finally:
        if log is not None:
            log.close()
    proc.wait()
    return records, proc.returncode, stopped, stderr_tail(trial_dir / 'stderr.log', proc.returncode)


def stderr_tail(path, returncode, lines=12):
    text = '\n'.join(Path(path).read_text(errors='replace').strip().splitlines()[-lines:])
    if returncode is not None and returncode < 0:
        text += f'\n(killed by {signal.Signals(-returncode).name})'
    return text.strip() or f'exit code {returncode}'


class Score:
    """A trial's score: its episode stat (`objective`; auto: score, else episode_return) averaged
    over its last SCORE_EPOCHS epochs that report it, weighted by their episode counts."""

    def __init__(self, objective):
        self.keys = ('score', 'episode_return') if objective == 'auto' else (objective,)
        self.recent = deque(maxlen=SCORE_EPOCHS)

    def add(self, record):
        """The score after this epoch's log record (None while no episode has ended)."""
        for key in self.keys:
            value = record.get(f'environment/{key}')
            if value is not None:
                self.keys = (key,)
                self.recent.append((value, record.get('environment/n') or 1))
                break
        return self.value

    @property
    def value(self):
        if not self.recent:
            return None
        return sum(v * n for v, n in self.recent) / sum(n for _, n in self.recent)


# ---- the study --------------------------------------------------------------------------------

def this_worker():
    """Who runs a trial: machine (host name and boot), process id and its start time."""
    import psutil
    try:
        boot = Path('/proc/sys/kernel/random/boot_id').read_text().strip()
    except OSError:
        boot = str(psutil.boot_time())
    return {'host': socket.gethostname(), 'boot': boot, 'pid': os.getpid(),
            'started': psutil.Process().create_time()}


def alive(worker):
    import psutil
    try:
        return psutil.Process(worker['pid']).create_time() == worker['started']
    except psutil.Error:
        return False


def fail_dead_trials(study, storage, me):
    """Mark failed the running trials of this machine whose sweep process has died (SIGKILL, a
    crash, a power cut): at once, where the heartbeat would take 3 * HEARTBEAT seconds. Also
    those a sweep died with before it could name itself (between Optuna's ask and the trial's
    start; they have no heartbeat either), once they are HEARTBEAT seconds old."""
    import datetime
    import optuna
    from optuna.trial import TrialState
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get('worker')
        if worker is None:
            age = datetime.datetime.now() - trial.datetime_start
            dead, why = age.total_seconds() > HEARTBEAT, 'its sweep process died as it started'
        else:
            dead = (worker['host'], worker['boot']) == (me['host'], me['boot']) and not alive(worker)
            why = f"its sweep process {worker['pid']} died"
        if dead:
            try:
                storage.set_trial_user_attr(trial._trial_id, 'error', why)
                storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                pass   # another worker got there first


def open_study(env_name, settings, space, base):
    """(study, storage, sweep folder): created, or loaded when it exists, and then checked to be
    the same sweep (env, objectives, space, overrides)."""
    import optuna

    from pufferlib.trainer.checkpoint import folder_name
    name = env_name if settings['name'] == 'auto' else str(settings['name'])
    sweep_dir = Path(str(settings['data_dir'])) / folder_name(name)
    url = settings['storage']
    if url == 'auto':
        sweep_dir.mkdir(parents=True, exist_ok=True)
        url = f'sqlite:///{(sweep_dir / "study.db").resolve()}'
    storage = connect(url)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    multi = settings['cost'] != 'none'
    study = optuna.create_study(storage=storage, study_name=name, load_if_exists=True,
                                directions=['maximize', 'minimize'] if multi else ['maximize'])
    identity = json.loads(json.dumps({'env': env_name, 'objective': settings['objective'],
                                      'cost': settings['cost'], 'space': space, 'overrides': base}))
    saved = study.user_attrs.get('puffer')
    if saved is None:
        study.set_user_attr('puffer', identity)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(['score', settings['cost']] if multi else ['score'])
    elif saved != identity:
        differ = ', '.join(f'{k} (was {saved.get(k)!r}, now {v!r})' for k, v in identity.items()
                           if saved.get(k) != v)
        raise APIUsageError(f'study {name!r} in {url} is another sweep: {differ}; run the command '
                            'that started it, or give this one --sweep.name NEW')
    study.sampler = make_sampler(settings, len(study.trials))
    study.pruner = make_pruner(settings)
    return study, storage, sweep_dir


def connect(url, attempts=4):
    """Optuna's RDBStorage at `url`. Workers that start together on a new database race to create
    its tables (one gets 'table ... already exists'): a database error is retried, by when the
    other has made them."""
    import optuna
    import sqlalchemy.exc
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():   # heartbeats are "experimental"
                warnings.simplefilter('ignore', optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT,
                                                  grace_period=3 * HEARTBEAT)
        except sqlalchemy.exc.DBAPIError as e:
            if attempt == attempts - 1:
                raise APIUsageError(f'sweep.storage {url}: {type(e).__name__}: {e}') from None
            time.sleep(0.5 * 2 ** attempt)
        except Exception as e:   # a bad URL or a missing database driver fail in many ways
            raise APIUsageError(f'sweep.storage {url}: {type(e).__name__}: {e}') from None


def make_sampler(settings, trials_so_far):
    """The sampler of sweep.method. A seed is offset by the trials already run, so that a resumed
    sweep does not propose its first trials again."""
    import optuna
    method, n = settings['method'], settings['trials']
    seed = None if settings['seed'] is None else settings['seed'] + trials_so_far
    if method == 'tpe':
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(3, n // 4)))
    if method == 'random':
        return optuna.samplers.RandomSampler(seed=seed)
    if method == 'nsga2':
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=min(50, max(4, n // 4)))
    try:
        import cmaes  # noqa: F401
    except ImportError:
        raise APIUsageError('sweep.method cmaes needs the cmaes package: pip install cmaes '
                            '(or pip install "pufferlib[sweep]")') from None
    return optuna.samplers.CmaEsSampler(seed=seed)


def make_pruner(settings):
    import optuna
    name, warmup = settings['pruner'], settings['prune_warmup']
    if name == 'auto':
        name = 'median' if settings['cost'] == 'none' else 'none'
    if name == 'median':
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=warmup)
    if name == 'hyperband':
        return optuna.pruners.HyperbandPruner(min_resource=max(1, warmup))
    return optuna.pruners.NopPruner()


def trial_counts(study):
    from optuna.trial import TrialState
    counts = {state: 0 for state in TrialState}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state] += 1
    return counts


def make_objective(env_name, settings, space, base, sweep_dir, me, progress):
    """Optuna's objective: one training subprocess per trial, reported per epoch for pruning."""
    import optuna
    multi = settings['cost'] != 'none'

    def objective(trial):
        def fail(message):
            trial.set_user_attr('error', message)
            raise TrialFailed(message)

        params = {key: suggest(trial, key, spec) for key, spec in space.items()}
        overrides = base + [f'--{key}={value}' for key, value in params.items()]
        trial.set_user_attr('worker', me)
        trial.set_user_attr('overrides', overrides)
        score = Score(settings['objective'])
        progress.started(trial, params)

        def on_record(record):
            value = score.add(record)
            progress.epoch(trial.number, record, value)
            if not multi and value is not None:
                trial.report(value, record['epoch'])
                return trial.should_prune()
            return False

        try:
            records, code, pruned, stderr = run_trial(
                env_name, overrides, sweep_dir / f'trial_{trial.number:04d}', on_record)
        except KeyboardInterrupt:
            trial.set_user_attr('error', 'interrupted (Ctrl-C)')
            raise
        if records:
            trial.set_user_attr('steps', records[-1]['agent_steps'])
            trial.set_user_attr('seconds', records[-1]['uptime'])
        if pruned:
            raise optuna.TrialPruned(f"at epoch {records[-1]['epoch']}")
        if code != 0:
            fail(stderr)
        if score.value is None:
            stats = sorted({k[12:] for r in records for k in r if k.startswith('environment/')})
            fail(f"its log has no {' or '.join(score.keys)} (its episode stats: "
                 f"{', '.join(stats) or 'none, no episode ended'}): set sweep.objective to one, "
                 'or raise train.total_timesteps')
        return (score.value, records[-1][COSTS[settings['cost']]]) if multi else score.value
    return objective


def best_trial(study):
    """The best completed trial: the highest score (on the Pareto front: the cheapest of those)."""
    from optuna.trial import TrialState
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    if len(study.directions) == 1:
        return study.best_trial
    return max(study.best_trials, key=lambda t: (t.values[0], -t.values[1]))


def trial_ini(env_name, study, trial):
    """A trial's config as an ini for `puffer train ENV --config PATH`: its overrides by section."""
    sections = {section: {} for section in SECTIONS}
    for key, value in parse_overrides(trial.user_attrs['overrides']):
        section, _, field = key.partition('.')
        sections[section][field] = value
    names = study.metric_names or ['score', 'cost']
    figures = ', '.join(f'{n} {v:.6g}' for n, v in zip(names, trial.values))
    lines = [f'# puffer sweep {env_name}: trial {trial.number} of study {study.study_name!r} '
             f'({figures})', f'# puffer train {env_name} --config THIS_FILE']
    for section, values in sections.items():
        if values:
            lines += ['', f'[{section}]'] + [f'{k} = {v}' for k, v in values.items()]
    return '\n'.join(lines) + '\n'


def write_plots(study, sweep_dir):
    """pareto.png (two objectives) or history.png (one), and importance.png (each parameter's
    importance to the score): Optuna's plots with the matplotlib backend. Returns the files
    written and the reasons for those not drawn."""
    from optuna.trial import TrialState
    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < 2:
        return [], ['no plots: they need 2 completed trials']
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as plots
    multi = len(study.directions) > 1

    def importance(study):
        if not multi:
            return plots.plot_param_importances(study)
        # a target is taken as lower-is-better: the score's negation is
        return plots.plot_param_importances(study, target=lambda t: -t.values[0],
                                            target_name='score')
    drawings = {'pareto.png' if multi else 'history.png':
                plots.plot_pareto_front if multi else plots.plot_optimization_history,
                'importance.png': importance}
    written, notes = [], []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings('ignore', message='PedAnovaImportanceEvaluator computes')
        for name, draw in drawings.items():
            try:
                draw(study)
                plt.gcf().savefig(sweep_dir / name, dpi=120, bbox_inches='tight')
                written.append(sweep_dir / name)
            except Exception as e:   # e.g. too few completed trials for an importance
                notes.append(f'{name} not drawn: {type(e).__name__}: {e}')
            finally:
                plt.close('all')
    return written, notes


# ---- progress -----------------------------------------------------------------------------------

class Progress:
    """The trials as a live rich table on a terminal; else one plain line per trial started and
    finished. Redrawn at most twice a second."""

    def __init__(self, env_name, study, space, settings, stream=None):
        self.env_name, self.study, self.settings = env_name, study, settings
        self.params = list(space)
        self.stream = stream or sys.stdout
        self.running = {}   # trial number -> (epoch, steps, score) of this worker's trial
        self.last_draw, self.live = 0.0, None
        if self.stream.isatty():
            from rich.console import Console
            from rich.live import Live
            self.live = Live(console=Console(file=self.stream), auto_refresh=False)
            self.live.start()
            self.draw()

    def started(self, trial, params):
        self.running[trial.number] = (0, 0, None)
        if self.live is None:
            shown = ' '.join(f'{k.split(".")[-1]}={number(v)}' for k, v in params.items())
            print(f'trial {trial.number} started: {shown}', file=self.stream, flush=True)
        self.draw()

    def epoch(self, number_, record, score):
        self.running[number_] = (record['epoch'], record['agent_steps'], score)
        if self.live is not None and time.time() - self.last_draw >= 0.5:
            self.draw()

    def finished(self, trial):
        self.running.pop(trial.number, None)
        if self.live is None:
            print(f'trial {trial.number} {outcome(self.study, trial)}', file=self.stream, flush=True)
        self.draw()

    def draw(self):
        if self.live is None:
            return
        from rich.table import Table
        trials = self.study.get_trials(deepcopy=False)
        counts = {s: sum(t.state.name == s for t in trials) for s in ('COMPLETE', 'PRUNED', 'FAIL')}
        best = best_trial(self.study)
        front = {t.number for t in self.study.best_trials} if best is not None else set()
        title = (f"puffer sweep {self.env_name}: {counts['COMPLETE'] + counts['PRUNED']} / "
                 f"{self.settings['trials']} done ({counts['PRUNED']} pruned, {counts['FAIL']} failed)")
        if best is not None:
            title += f'; best: trial {best.number}, score {number(best.values[0])}'
        table = Table(title=title, title_justify='left')
        for column in ('trial', 'state', 'score', self.settings['cost'], 'epoch',
                       *(p.split('.')[-1] for p in self.params)):
            table.add_column(column, justify='right')
        for trial in trials[-20:]:
            cost = trial.values[1] if trial.values and len(trial.values) > 1 else trial.user_attrs.get(
                'seconds' if self.settings['cost'] == 'time' else 'steps')
            score = trial.values[0] if trial.values else None
            epoch = ''
            if trial.number in self.running:
                epoch, steps, score = self.running[trial.number]
                cost = steps if self.settings['cost'] != 'time' else None
            elif trial.intermediate_values:
                score = trial.intermediate_values[max(trial.intermediate_values)]
            table.add_row(f"{trial.number}{'*' if trial.number in front else ''}",
                          trial.state.name.lower(), number(score), number(cost), str(epoch),
                          *(number(trial.params.get(p)) for p in self.params))
        notes = ['* on the Pareto front'] if len(self.study.directions) > 1 else []
        failed = [t for t in trials if t.state.name == 'FAIL']
        if failed:
            notes.append(f'trial {failed[-1].number} {outcome(self.study, failed[-1])}')
        table.caption = '; '.join(notes) or None
        table.caption_justify = 'left'
        self.live.update(table, refresh=True)
        self.last_draw = time.time()

    def close(self):
        if self.live is not None:
            self.draw()
            self.live.stop()


def outcome(study, trial):
    """'complete: score 0.88, steps 1.5M', 'pruned at epoch 20: score 0.1', 'fail: <error>'."""
    state = trial.state.name.lower()
    if trial.state.name == 'PRUNED' and trial.intermediate_values:
        last = max(trial.intermediate_values)
        return f'{state} at epoch {last}: score {number(trial.intermediate_values[last])}'
    if trial.values:
        names = study.metric_names or ['score']
        return state + ': ' + ', '.join(f'{n} {number(v)}' for n, v in zip(names, trial.values))
    error = trial.user_attrs.get('error', '')
    return f'{state}: {error.splitlines()[-1] if error else ""}'


def number(x):
    if x is None:
        return ''
    from pufferlib.trainer.dashboard import number as short
    return short(x)


# ---- puffer sweep ----------------------------------------------------------------------------

def sweep(env_name, words, config_file=None, stream=None):
    """`puffer sweep ENV`: run trials until sweep.trials are complete or pruned in the study, then
    write best.ini and the plots into the sweep folder. Returns the exit code (130 on Ctrl-C)."""
    stream = stream or sys.stdout
    settings, space, base = load_sweep(env_name, words, config_file)
    import optuna
    from optuna.trial import TrialState
    optuna.logging.set_verbosity(optuna.logging.ERROR)   # the table says it all
    study, storage, sweep_dir = open_study(env_name, settings, space, base)
    me = this_worker()
    progress = Progress(env_name, study, space, settings, stream)
    objective = make_objective(env_name, settings, space, base, sweep_dir, me, progress)
    interrupted, failures, code, ran = False, 0, 0, []
    try:
        while True:
            fail_dead_trials(study, storage, me)
            counts = trial_counts(study)
            if counts[TrialState.COMPLETE] + counts[TrialState.PRUNED] + \
                    counts[TrialState.RUNNING] >= settings['trials']:
                break
            try:
                study.optimize(objective, n_trials=1, catch=(TrialFailed,),
                               callbacks=[lambda study, trial: ran.append(trial)])
            except optuna.exceptions.UpdateFinishedTrialError:
                continue   # its heartbeat was late and another worker failed it: go on
            trial = ran[-1]
            progress.finished(trial)
            failures = failures + 1 if trial.state == TrialState.FAIL else 0
            write_best(env_name, study, sweep_dir)
            if failures >= settings['max_failures']:
                progress.close()
                print(f'puffer sweep: {failures} trials in a row failed (sweep.max_failures); the '
                      f"last, trial {trial.number}:\n{trial.user_attrs.get('error')}", file=sys.stderr)
                code = 1
                break
    except KeyboardInterrupt:
        interrupted, code = True, 130
    finally:
        progress.close()
    finish(env_name, study, sweep_dir, settings, interrupted, stream)
    return code


def write_best(env_name, study, sweep_dir):
    best = best_trial(study)
    if best is None:
        return None
    path = sweep_dir / 'best.ini'
    tmp = path.with_name(f'best.ini.tmp{os.getpid()}')
    tmp.write_text(trial_ini(env_name, study, best))
    os.replace(tmp, path)
    return best


def finish(env_name, study, sweep_dir, settings, interrupted, stream):
    from optuna.trial import TrialState
    counts = trial_counts(study)
    done = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
    print(f"{'interrupted' if interrupted else 'sweep'} {study.study_name}: {done} of "
          f"{settings['trials']} trials done ({counts[TrialState.PRUNED]} pruned), "
          f'{counts[TrialState.FAIL]} failed, {counts[TrialState.RUNNING]} running elsewhere',
          file=stream, flush=True)
    best = write_best(env_name, study, sweep_dir)
    if best is not None:
        print(f'best: trial {best.number}, {outcome(study, best)}; '
              f'puffer train {env_name} --config {sweep_dir / "best.ini"}', file=stream)
    written, notes = write_plots(study, sweep_dir)
    for line in [f'wrote {p}' for p in written] + notes:
        print(line, file=stream)
    if interrupted:
        print('resume: run the same command again', file=stream, flush=True)
