"""The jit-able scoring step: every scored task's anomaly score for a batch of object cubes."""

import jax

from ssmtl_jax.tasks import views as task_views


def make_score_step(model, tasks):
  """`score_step(variables, batch, rng) -> {task: anomaly score [B]}`.

  Tasks with the same eval view (T1, T2: the plain forward cube) share one backbone pass;
  multi-pass tasks (T6's chained inpainting) run their later passes inside the same compiled
  function.
  """

  tasks = [t for t in tasks if t.scored]

  def score_step(variables, batch, rng):
    batch = task_views.to_float(batch)
    keys = jax.random.split(rng, len(tasks))
    views, targets = {}, {}
    for task, key in zip(tasks, keys):
      view, targets[task.name] = task.eval_view(batch, key)
      views.setdefault(task.eval_view_name, view)
    routes = tuple((t.name, t.eval_view_name) for t in tasks)
    out = model.apply(variables, views, routes, False)
    for p in range(1, max(t.eval_passes for t in tasks)):
      chained = [t for t in tasks if t.eval_passes > p]
      next_views = {t.name: t.next_eval_view(out[t.name], targets[t.name],
                                             jax.random.fold_in(keys[i], p))
                    for i, t in enumerate(tasks) if t in chained}
      out.update(model.apply(variables, next_views, tuple((t.name, t.name) for t in chained), False))
    return {t.name: t.score(out[t.name], targets[t.name]) for t in tasks}

  return score_step
