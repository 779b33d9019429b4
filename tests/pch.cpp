// Compiles the precompiled header (rlxf/rlxf.hpp) that every test reuses.
