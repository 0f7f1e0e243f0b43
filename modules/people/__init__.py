"""People, hands and objects in one role's video (docs/people.md): BlazePose and MediaPipe Hands from the mediapipe
wheel under ai-edge-litert, optionally a COCO object detector under onnxruntime."""
