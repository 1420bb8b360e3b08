"""The worker's video pipeline, one stage per module (numpy, OpenCV, PyAV, onnxruntime; no
torch):

1. :mod:`service.pipeline.video`: probe a video, decode its frames one at a time, upright.
2. :mod:`service.pipeline.detect`: find people in batches of frames (HOG, or a YOLO ONNX model).
3. :mod:`service.pipeline.tracking`: link detections into one track per person (SORT).
4. :mod:`service.pipeline.regress`: each track's crops (:mod:`~service.pipeline.crops`) through
   a model bundle's encoder, its temporal model in blended windows
   (:mod:`~service.pipeline.windows`) and its body, optionally smoothed
   (:mod:`~service.pipeline.smoothing`), placed in the frame (:mod:`~service.pipeline.camera`):
   the per-track results of :mod:`service.pipeline.result`, parameters without vertices. A
   keypoint family's bundle has no encoder: its features are each track's landmarks
   (:mod:`~service.pipeline.landmark_features`), and no frame is read.

:mod:`service.pipeline.body` poses vertices from those parameters on demand (the outputs, the
gateway), so that nothing the pipeline holds grows with the video's length but the parameters.

:mod:`service.pipeline.boxes` holds the box arithmetic the stages share,
:mod:`service.pipeline.rotations` the rotation arithmetic.
"""
