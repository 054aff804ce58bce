/* SwiftPM needs a source file in a C target; the declarations are in include/. */
