"""Progress display: a live rich dashboard on a terminal, one plain line per epoch otherwise
(CI, logs, pipes). Both redraw at most 4 times a second; the last epoch is always shown."""
import sys
import time

import numpy as np

import pufferlib

LOSSES = ('policy_loss', 'value_loss', 'entropy', 'approx_kl', 'clipfrac', 'explained_variance',
          'importance', 'learning_rate')
TIMES = ('env', 'forward', 'copy', 'learn')


def make_dashboard(env_name, policy, config, stream=None, world_size=1):
    """The dashboard of rank 0 under torchrun: SPS and steps are those of all `world_size` ranks."""
    stream = stream or sys.stdout
    params = sum(p.numel() for p in policy.parameters())
    cls = RichDashboard if stream.isatty() else PlainDashboard
    return cls(env_name, params, config, stream, world_size)


def duration(seconds):
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f'{h}h {m:02d}m {s:02d}s' if h else f'{m}m {s:02d}s' if m else f'{s}s'


def number(x):
    if isinstance(x, (int, np.integer)) or (isinstance(x, float) and x.is_integer() and abs(x) >= 1e3):
        x = int(x)
        for unit, size in (('B', 1e9), ('M', 1e6), ('k', 1e3)):
            if abs(x) >= size:
                return f'{x / size:.1f}{unit}'
        return str(x)
    return f'{x:.4g}' if isinstance(x, float) else str(x)


def summary(trainer):
    total = trainer.cfg['total_timesteps']
    remaining = (total - trainer.global_step) / trainer.sps if trainer.sps > 0 else float('nan')
    return {'steps': trainer.global_step, 'total': total, 'SPS': trainer.sps,
            'epoch': trainer.epoch, 'uptime': trainer.uptime, 'remaining': remaining}


class PlainDashboard:
    def __init__(self, env_name, params, config, stream, world_size=1):
        self.env_name, self.params, self.stream = env_name, params, stream
        self.last_draw, self.pending = 0.0, None
        ranks = f', {world_size} processes' if world_size > 1 else ''
        print(f'pufferlib {pufferlib.__version__}: training {env_name} '
              f'({number(params)} parameters{ranks})', file=stream, flush=True)

    def update(self, trainer, record):
        self.pending = trainer
        if time.time() - self.last_draw >= 0.25:
            self.draw(trainer)

    def draw(self, trainer):
        s = summary(trainer)
        remaining = duration(s['remaining']) if np.isfinite(s['remaining']) else '?'
        parts = [f"epoch {s['epoch']}", f"steps {number(s['steps'])}/{number(s['total'])}",
                 f"{s['SPS']:,.0f} SPS", f"up {duration(s['uptime'])}", f'left {remaining}']
        parts += [f'{k} {number(v)}' for k, v in trainer.env_stats.items()]
        parts += [f'{k} {number(trainer.losses[k])}' for k in LOSSES[:3] if k in trainer.losses]
        print(' | '.join(parts), file=self.stream, flush=True)
        self.last_draw, self.pending = time.time(), None

    def close(self, trainer):
        if self.pending is not None:
            self.draw(self.pending)


class RichDashboard:
    def __init__(self, env_name, params, config, stream, world_size=1):
        from rich.console import Console
        from rich.live import Live
        self.env_name, self.params, self.world_size = env_name, params, world_size
        self.console = Console(file=stream)
        self.live = Live(console=self.console, auto_refresh=False, transient=False)
        self.live.start()
        self.last_draw, self.pending = 0.0, None
        try:
            import psutil
            psutil.cpu_percent()
            self.psutil = psutil
        except ImportError:
            self.psutil = None

    def update(self, trainer, record):
        self.pending = trainer
        if time.time() - self.last_draw >= 0.25:
            self.draw(trainer)

    def draw(self, trainer):
        self.live.update(self.render(trainer), refresh=True)
        self.last_draw, self.pending = time.time(), None

    def render(self, trainer):
        from rich import box
        from rich.table import Table
        s = summary(trainer)
        header = f'[bold cyan]pufferlib {pufferlib.__version__}[/]'
        if self.psutil is not None:
            header += (f'   CPU {self.psutil.cpu_percent():.0f}%   '
                       f'DRAM {self.psutil.virtual_memory().percent:.0f}%')
        grid = Table(box=box.ROUNDED, title=header, show_header=False, expand=False)
        left = Table(box=None, show_header=False, padding=(0, 1))
        left.add_row('[bold]Summary[/]', '')
        remaining = duration(s['remaining']) if np.isfinite(s['remaining']) else '?'
        rows = (('processes', str(self.world_size)),) if self.world_size > 1 else ()
        for key, value in (('env', self.env_name), ('params', number(self.params)), *rows,
                           ('steps', f"{number(s['steps'])} / {number(s['total'])}"),
                           ('SPS', f"{s['SPS']:,.0f}"), ('epoch', str(s['epoch'])),
                           ('uptime', duration(s['uptime'])), ('remaining', remaining)):
            left.add_row(key, f'[green]{value}[/]')
        left.add_row('', '')
        left.add_row('[bold]Time split[/]', '')
        total_time = sum(trainer.times[k] for k in TIMES) or 1.0
        for key in TIMES:
            t = trainer.times[key]
            left.add_row(key, f'[yellow]{t:.1f}s  {t / total_time:5.1%}[/]')
        right = Table(box=None, show_header=False, padding=(0, 1))
        right.add_row('[bold]Losses[/]', '')
        for key in LOSSES:
            if key in trainer.losses:
                right.add_row(key, f'[magenta]{number(trainer.losses[key])}[/]')
        right.add_row('', '')
        right.add_row('[bold]Episode stats[/]', '')
        for key, value in list(trainer.env_stats.items())[:20]:
            right.add_row(key, f'[cyan]{number(value)}[/]')
        grid.add_row(left, right)
        return grid

    def close(self, trainer):
        if self.pending is not None:
            self.draw(self.pending)
        self.live.stop()
