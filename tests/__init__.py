"""The test suite; its folders mirror pipelines/ and tabs/."""
