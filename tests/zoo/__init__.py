"""Test model zoo: small torch nets trained on sklearn digits, exported to ONNX.

* ``nets``        - nn.Module definitions, ``train``, ``export_legacy``, ``export_dynamo``
* ``sklearn_mlp`` - ``build_sklearn_mlp(path)`` (skl2onnx-converted MLPClassifier)
* ``build_zoo``   - script writing ``tests/models/*.onnx`` and ``tests/models/README.md``
"""
