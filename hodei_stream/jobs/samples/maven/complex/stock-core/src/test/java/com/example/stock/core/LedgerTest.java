package com.example.stock.core;

import static org.junit.Assert.assertEquals;

import java.util.List;
import org.junit.Test;

public class LedgerTest {
    @Test
    public void levelsFollowTheMovements() {
        Ledger ledger = new Ledger();
        ledger.apply(Movement.parse("BOLT-10, 50"));
        ledger.apply(Movement.parse("BOLT-10,-20"));
        ledger.apply(Movement.parse("NUT-10,5"));
        assertEquals(30, ledger.level("BOLT-10"));
        assertEquals(5, ledger.level("NUT-10"));
        assertEquals(0, ledger.level("WASHER"));
    }

    @Test
    public void reordersWhatIsBelowTheThreshold() {
        Ledger ledger = new Ledger();
        ledger.apply(new Movement("B", 3));
        ledger.apply(new Movement("A", 1));
        ledger.apply(new Movement("C", 40));
        assertEquals(List.of("A", "B"), ledger.belowThreshold(10));
    }

    @Test(expected = IllegalStateException.class)
    public void refusesToShipMoreThanItHas() {
        Ledger ledger = new Ledger();
        ledger.apply(new Movement("A", 2));
        ledger.apply(new Movement("A", -3));
    }

    @Test(expected = IllegalArgumentException.class)
    public void refusesAMalformedLine() {
        Movement.parse("A;3");
    }
}
