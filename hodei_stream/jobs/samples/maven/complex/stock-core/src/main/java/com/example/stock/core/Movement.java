package com.example.stock.core;

/** One stock movement: units of an item received (positive) or shipped (negative). */
public record Movement(String sku, int units) {
    public Movement {
        if (sku == null || sku.isBlank()) {
            throw new IllegalArgumentException("a movement needs a SKU");
        }
    }

    /** Parses "SKU,UNITS" (as in a movements CSV line). */
    public static Movement parse(String line) {
        String[] fields = line.split(",");
        if (fields.length != 2) {
            throw new IllegalArgumentException("expected SKU,UNITS but got: " + line);
        }
        return new Movement(fields[0].strip(), Integer.parseInt(fields[1].strip()));
    }
}
