"""Every coordinate frame and target encoding, torch-batched where models use them.

* :mod:`~lightning_pose.codecs.box`: original pixels <-> box-normalised (DeepPose Eq. 1), one
  box per sample or one per point.
* :mod:`~lightning_pose.codecs.grid`: box-normalised <-> cells of any grid laid over the box
  (network input, heatmap at stride s, sliding windows).
* :mod:`~lightning_pose.codecs.crop`: crops of images (OpenCV) and of batched views or feature
  maps (torch).
* :mod:`~lightning_pose.codecs.segments`: segment lengths (torso diameter, head segment) and
  limb end points.
* :mod:`~lightning_pose.codecs.heatmap`: Gaussian target heatmaps and their decoding.
* :mod:`~lightning_pose.codecs.windows`: binary labels of a sliding-window grid (joints and
  body-part centres in windows, Li, Liu & Chan 2014).
* :mod:`~lightning_pose.codecs.simcc`: a distribution over bins along each axis of the box
  (SimCC, Li et al. 2022).
* :mod:`~lightning_pose.codecs.integral`: the softmax expectation of a heat-map (Sun et al.
  2018).
"""
