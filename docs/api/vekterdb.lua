--- The part of module `vekterdb` implemented in C (bindings/), documented
-- here for LDoc, which merges it into the reference of lua/vekterdb.lua.
-- This file is never loaded: it holds doc comments only.
-- @module vekterdb

--- A float32 vector.
--
--     local v = vekterdb.vector({ 0.5, 1, 2 })   -- from numbers
--     local z = vekterdb.vector(128)              -- 128 zeros
--     local p = vekterdb.vector(v:tobytes())      -- from packed float32
-- @function vector
-- @param from an array of numbers, a packed float32 string (4 bytes per
-- value, the machine's byte order), a vector (copied), a 1 x d matrix
-- (copied), or a dimension (a vector of that many zeros)
-- @treturn Vector the vector; a value that is not a number, an empty array
-- or a string whose length is not a multiple of 4 raise an error

--- A float32 matrix: n vectors of dimension d, one per row.
--
--     local m = vekterdb.matrix(1000, 64)                -- 1000 x 64 zeros
--     local q = vekterdb.matrix({ { 1, 0 }, { 0, 1 } })  -- 2 x 2, from rows
--     local b = vekterdb.matrix(m:tobytes(), 64)         -- from packed float32
-- @function matrix
-- @param from a row count n (then `d` is required), an array of vectors
-- (arrays of numbers or `Vector`s, all of one dimension), an array of numbers
-- (one row), a packed float32 string (then `d` is required), or a matrix or
-- vector (copied)
-- @int[opt] d the dimension; with rows given, a row of another dimension
-- raises an error
-- @treturn Matrix the matrix

--- All of the given where-clauses must hold (SQL `AND`): the same as
-- `vekterdb.where.and_`, and as `a & b` under Lua 5.3 and 5.4.
-- @function and_
-- @param ... one or more where-clauses
-- @treturn Expr the combined where-clause

--- At least one of the given where-clauses must hold (SQL `OR`): the same as
-- `vekterdb.where.or_`, and as `a | b` under Lua 5.3 and 5.4.
-- @function or_
-- @param ... one or more where-clauses
-- @treturn Expr the combined where-clause

--- The where-clause must not hold (SQL `NOT`): the same as
-- `vekterdb.where.not_`, and as `~a` under Lua 5.3 and 5.4.
-- @function not_
-- @param expr a where-clause
-- @treturn Expr the negated where-clause

--- Sets how many OpenMP threads FAISS uses (training, adding, searching), for
-- the whole process. OpenBLAS is held to one thread when the module loads
-- (its threads would compete with FAISS's) unless `OPENBLAS_NUM_THREADS` is
-- set.
-- @function set_num_threads
-- @int n threads, at least 1
-- @return nothing

--- How many OpenMP threads FAISS uses.
-- @function get_num_threads
-- @treturn int the thread count (OpenMP's default: one per core, or
-- `OMP_NUM_THREADS`)

--- A float32 vector (`vekterdb.Vector`), from `vekterdb.vector`, `m[i]` of
-- a matrix or a record's vector column. Everything that takes a vector also
-- takes an array of numbers or a packed float32 string.
--
--  * `#v` and `v.d`: the dimension
--  * `v[i]`: element i (1-based) as a number; nil outside 1..d
--  * `v[i] = x`: sets element i (an index outside 1..d raises an error)
--  * `v1 == v2`: same dimension and the same float32 values
--  * `tostring(v)`: "vekterdb.vector(d): 0x..."
--
-- The methods of `Matrix` work on a vector too, as on a 1 x d matrix.
-- @type Vector

--- The values as an array of numbers.
-- @function Vector:totable
-- @treturn {number,...} d numbers

--- The values as a packed float32 string (4 bytes per value, the machine's
-- byte order): the form `vekterdb.vector(s)` and numpy's `frombuffer` read.
-- @function Vector:tobytes
-- @treturn string 4 x d bytes

--- Scales the vector to unit length (L2 norm 1), in place; a zero vector
-- stays zero. With inner product as the metric, normalized vectors give
-- cosine similarity.
-- @function Vector:normalize
-- @treturn Vector the same vector

--- A copy.
-- @function Vector:clone
-- @treturn Vector a new vector with the same values

--- A float32 matrix (`vekterdb.Matrix`), from `vekterdb.matrix`,
-- `db:sample_vectors`, or the vector-file readers of `vekterdb.io`.
--
--  * `#m` and `m.n`: the number of rows; `m.d`: the dimension
--  * `m[i]`: row i (1-based) as a new `Vector` (a copy); nil outside 1..n
--  * `m[i] = v`: sets row i from a vector of dimension d
--  * `m1 == m2`: same shape and the same float32 values
--  * `tostring(m)`: "vekterdb.matrix(n x d): 0x..."
-- @type Matrix

--- The rows as an array of arrays of numbers.
-- @function Matrix:totable
-- @treturn {{number,...},...} n arrays of d numbers

--- The values, row after row, as a packed float32 string.
-- @function Matrix:tobytes
-- @treturn string 4 x n x d bytes

--- One value.
-- @function Matrix:get
-- @int i row, 1..n
-- @int j column, 1..d
-- @treturn number the value; a position out of range raises an error

--- Sets one value.
-- @function Matrix:set
-- @int i row, 1..n
-- @int j column, 1..d
-- @number x the new value
-- @return nothing

--- Row i as a new vector: the same as `m[i]`, but a row out of range
-- raises an error.
-- @function Matrix:row
-- @int i row, 1..n
-- @treturn Vector a copy of the row

--- Scales every row to unit length (L2 norm 1), in place; zero rows stay
-- zero.
-- @function Matrix:normalize
-- @treturn Matrix the same matrix

--- A copy.
-- @function Matrix:clone
-- @treturn Matrix a new matrix with the same values

--- A FAISS index (`vekterdb.Index`), from `vekterdb.faiss.index_factory`,
-- `vekterdb.faiss.read_index`, `db:create_index` or `db.index`. Pair one with
-- a table through `db:attach`; once paired, use the table's methods, which keep
-- the index, the table and the index file in step. The methods below are
-- FAISS's own, for an index not paired with a table.
--
--  * `ix.ntotal`: the vectors it holds
--  * `ix.d`: the dimension
--  * `ix.is_trained`: true once trained (or when its type needs no training)
--  * `ix.metric`: "inner_product" or "l2"
--  * `ix.on_disk`: true when its inverted lists live in a lists file of
--    their own, mapped read-only (`db:create_index` with `on_disk`;
--    docs/ondisk.md)
-- @type Index

--- Writes the index to a file, as FAISS writes it. A table's own index files
-- are written by the table's methods instead, which also record the file's
-- digest (see docs/reliability.md).
-- @function Index:write
-- @string path the file
-- @return nothing

--- Sets FAISS runtime parameters, such as "nprobe=16,quantizer_efSearch=32"
-- (FAISS's `ParameterSpace`); an unknown name raises an error.
-- @function Index:set_parameters
-- @string params comma-separated name=value pairs
-- @return nothing

--- Reads one FAISS runtime parameter.
-- @function Index:get_parameter
-- @string name such as "nprobe"
-- @treturn number its value; a name the index does not have raises an error

--- Trains the index on vectors.
-- @function Index:train
-- @param vectors a `Matrix` (or anything `vekterdb.matrix` takes) of the
-- index's dimension
-- @return nothing

--- Adds vectors, their ids continuing from `ix.ntotal`.
-- @function Index:add
-- @param vectors a `Matrix` (or anything `vekterdb.matrix` takes) of the
-- index's dimension
-- @return nothing
