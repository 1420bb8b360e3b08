"""The worker's video pipeline, one stage per module (numpy, OpenCV, PyAV, onnxruntime; no
torch):

1. :mod:`service.pipeline.video`: probe a video, decode its frames one at a time, upright.
2. :mod:`service.pipeline.detect`: find people in batches of frames (HOG, or a YOLO ONNX model).
3. :mod:`service.pipeline.tracking`: link detections into one track per person (SORT).

:mod:`service.pipeline.boxes` holds the box arithmetic the stages share.
"""
