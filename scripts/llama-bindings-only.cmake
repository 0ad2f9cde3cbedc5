# Included by llama.cpp's project() (CMAKE_PROJECT_llama.cpp_INCLUDE, see scripts/install.sh).
# The Python bindings load libllama and the ggml libraries only; llama.cpp's common library is
# about half of the compile. llama-cpp-python forces its cache option on, so it is switched off
# here as a normal variable, which llama.cpp's option() then leaves alone (policy CMP0077).
set(LLAMA_BUILD_COMMON OFF)
