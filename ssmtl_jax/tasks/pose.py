"""T9 pose estimation: reproduce a pose teacher's keypoint heatmaps of the middle crop."""

import dataclasses

from ssmtl_jax.tasks import teacher_maps


@dataclasses.dataclass(frozen=True)
class Pose(teacher_maps.TeacherMaps):
  name = "pose"
