"""intforge quantizer: float ONNX -> verified, prepared, calibrated, fully integer graph."""
