"""``echo``: a trivial model proving the server runs Python-backend models end to end.

INPUT (FP32 [batch, -1]) is returned as OUTPUT, and SUM holds each row's sum.
"""

import numpy as np
import triton_python_backend_utils as pb_utils  # provided by Triton's Python backend


class TritonPythonModel:
    """Triton Python-backend entry point."""

    def execute(self, requests):  # type: ignore[no-untyped-def]
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT").as_numpy().astype(np.float32)
            responses.append(
                pb_utils.InferenceResponse(
                    [
                        pb_utils.Tensor("OUTPUT", x),
                        pb_utils.Tensor("SUM", x.sum(axis=1, keepdims=True).astype(np.float32)),
                    ]
                )
            )
        return responses
