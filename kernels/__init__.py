"""Transport kernel sources (OpenCL C / CUDA C++ common subset), shipped inside the package."""
