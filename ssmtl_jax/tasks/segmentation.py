"""T7 segmentation: reproduce a segmentation teacher's class maps of the middle crop."""

import dataclasses

from ssmtl_jax.tasks import teacher_maps


@dataclasses.dataclass(frozen=True)
class Segmentation(teacher_maps.TeacherMaps):
  name = "segmentation"
